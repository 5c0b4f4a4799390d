"""A vLLM server's runtime LoRA endpoints, for the ``openai`` engine.

:class:`LoRAAdmin` posts to ``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` with plain
``urllib`` (one call at a time, between ticks); requests then name the adapter as their ``model``.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from socius.errors import EngineSetupError


class LoRAAdmin:
    """A vLLM server's runtime LoRA endpoints, and the adapters loaded through them.

    ``load(name, path)`` posts ``{"lora_name", "lora_path"}`` to ``<base_url>/load_lora_adapter``
    (``base_url`` ends in ``/v1``, as for the client). Replacing a loaded name first asks the
    server to reload it in place (``load_inplace``, vLLM >= 0.11); a server that refuses (an older
    one: "already been loaded") gets ``unload`` then ``load``, and if that load fails the old
    folder is loaded again, so a failed replacement leaves the server as it was.
    Failures raise :class:`~socius.errors.EngineSetupError` with the server's reason.
    Plain HTTP (``urllib``), one call at a time, between ticks.
    """

    def __init__(self, base_url: str | None, api_key: str = "EMPTY", timeout_s: float = 60.0):
        if not base_url:
            raise EngineSetupError("openai: loading adapters needs base_url (or OPENAI_BASE_URL)")
        self.base_url, self.api_key, self.timeout_s = base_url.rstrip("/"), api_key, float(timeout_s)
        self.loaded: dict[str, str] = {}

    def _post(self, endpoint: str, body: dict) -> tuple[int, str]:
        req = urllib.request.Request(f"{self.base_url}/{endpoint}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.api_key}"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - the user's server
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as e:
            return 0, f"{type(e).__name__}: {getattr(e, 'reason', e)}"

    def _load(self, name: str, path: str, inplace: bool = False) -> tuple[int, str]:
        body = {"lora_name": name, "lora_path": path}
        if inplace:
            body["load_inplace"] = True
        return self._post("load_lora_adapter", body)

    def load(self, name: str, path: str) -> None:
        if not isinstance(name, str) or not name or name != name.strip():
            raise EngineSetupError(f"openai: adapter name must be a non-empty string, got {name!r}")
        path = str(path)
        old = self.loaded.get(name)
        status, text = self._load(name, path, inplace=old is not None)
        if status != 200 and old is not None and "already" in text.lower():  # a server without load_inplace
            self.unload(name)
            status, text = self._load(name, path)
            if status != 200:
                back, _ = self._load(name, old)
                if back == 200:
                    self.loaded[name] = old
        if status != 200:
            raise EngineSetupError(f"openai: adapter {name!r} from {path} did not load on {self.base_url} "
                                   f"(HTTP {status or 'error'}: {text.strip()[:300]}); is the server started with "
                                   "--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True?")
        self.loaded[name] = path

    def unload(self, name: str) -> None:
        status, text = self._post("unload_lora_adapter", {"lora_name": name})
        self.loaded.pop(name, None)
        if status not in (200, 404):  # 404: the server no longer has it, which is what was asked
            raise EngineSetupError(f"openai: adapter {name!r} did not unload on {self.base_url} "
                                   f"(HTTP {status or 'error'}: {text.strip()[:300]})")
