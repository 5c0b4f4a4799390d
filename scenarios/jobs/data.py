"""Vocabulary of the job market: fields, skills, job titles, salaries, cities, names and firms.

Plain constant tables the default population specs (:mod:`.config`) and the
build's naming (:mod:`.scenario`) draw from. Salaries are in thousands a
year; every table is keyed by the five fields of :data:`FIELDS`.
"""
from __future__ import annotations

FIELDS = ["software", "nursing", "sales", "logistics", "finance"]
SKILLS = {
    "software": ["python, sql, cloud", "java, testing, git", "javascript, react, css", "python, machine learning, sql"],
    "nursing": ["patient care, medication, triage", "intensive care, monitoring, triage",
                "elderly care, wound care, medication"],
    "sales": ["negotiation, crm, cold calling", "retail, customer service, cash handling",
              "account management, crm, presentations"],
    "logistics": ["forklift, inventory, scheduling", "driving licence, route planning, delivery",
                  "supply chain, inventory, erp"],
    "finance": ["accounting, excel, tax", "auditing, excel, reporting", "financial analysis, excel, sql"],
}
TITLES = {"software": ["Software Developer", "Data Engineer", "Web Developer"],
          "nursing": ["Registered Nurse", "Care Assistant", "ICU Nurse"],
          "sales": ["Sales Representative", "Account Manager", "Shop Assistant"],
          "logistics": ["Warehouse Operative", "Delivery Driver", "Logistics Coordinator"],
          "finance": ["Accountant", "Financial Analyst", "Auditor"]}
SALARY = {"software": 60, "nursing": 42, "sales": 38, "logistics": 34, "finance": 52}   # k a year, mean
CITIES = ["Berlin", "Hamburg", "Munich", "Leipzig"]
FIRST = ["Maria", "Wei", "Tom", "Aiko", "Carlos", "Olga", "Kwame", "Priya", "Lena", "Omar", "Sofia", "Ivan", "Mei",
         "John", "Fatima", "Alex", "Nadia", "Pedro", "Yuki", "Hassan", "Emma", "Ravi", "Chloe", "Jonas"]
LAST = ["Schmidt", "Chen", "Novak", "Tanaka", "Garcia", "Petrova", "Mensah", "Sharma", "Weber", "Haddad",
        "Rossi", "Ivanova", "Lin", "Smith", "Okafor", "Brown"]
FIRMS = ["Northwind", "Bluebird", "Alder", "Kestrel", "Meridian", "Copperleaf", "Harbor", "Summit", "Lindqvist",
         "Oakridge", "Brightline", "Fenwick"]
FIRM_KIND = {"software": "Software", "nursing": "Care", "sales": "Retail", "logistics": "Logistics",
             "finance": "Finance"}
