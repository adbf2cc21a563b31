"""Writes gcp_billing_export_2024q1.jsonl.gz: billq's bundled demo export.

A synthetic GCP standard billing export in `bq extract` NEWLINE_DELIMITED_JSON form,
deterministic (fixed seed), January to March 2024, two billing accounts. Services,
SKUs, units and system labels are real ones taken from the koku GCP samples graded in
../shared/realdata/SOURCES.md; costs, projects and labels are made up. It has late
usage (March usage invoiced in April is not here, but usage of the last hours of a
month in US/Pacific lands in the next UTC month), credits of several types, a tax row
per month and a correction with adjustment_info.
"""
import gzip
import json
import random
from datetime import datetime, timedelta, timezone

rng = random.Random(20240101)
SKUS = [
    ("6F81-5844-456A", "Compute Engine", "CF4E-A0C7-E3BF", "E2 Instance Core running in Americas", "seconds", "hour", 3600.0, 1.0),
    ("6F81-5844-456A", "Compute Engine", "F449-33EC-A5EF", "E2 Instance Ram running in Americas", "byte-seconds", "gibibyte hour", 15461882265600.0, 4.0),
    ("6F81-5844-456A", "Compute Engine", "D973-5D65-BAB2", "Storage PD Capacity", "byte-seconds", "gibibyte month", 135652427132.0, 0.0000471685),
    ("6F81-5844-456A", "Compute Engine", "6B8F-E63D-832B", "Network Internet Egress from Americas to APAC", "bytes", "gibibyte", 14871.0, 0.00001385),
    ("24E6-581D-38E5", "BigQuery", "947D-3B46-7781", "Active Storage", "byte-seconds", "gibibyte month", 9.1e12, 0.0031),
    ("95FF-2EF5-5EA1", "Cloud Storage", "8AE7-5BBD-8F38", "Multi-Region Standard Class B Operations", "requests", "count", 120.0, 120.0),
    ("5490-F7B7-8DF6", "Stackdriver Logging", "143F-A1B0-E0BE", "Log Volume", "bytes", "gibibyte", 52428800.0, 0.048828125),
]
PROJECTS = [
    ("012345-6789AB-CDEF01", "shop-prod", "101", "Shop Prod", [("env", "prod"), ("team", "web")]),
    ("012345-6789AB-CDEF01", "shop-dev", "102", "Shop Dev", [("env", "dev"), ("team", "web")]),
    ("012345-6789AB-CDEF01", "data-lake", "103", "Data Lake", [("env", "prod"), ("team", "data")]),
    ("98A7B6-C5D4E3-F2A1B0", "ml-research", "201", "ML Research", [("team", "ml")]),
]
CREDITS = [("Sustained use discount", "SUSTAINED_USAGE_DISCOUNT"), ("Free tier", "FREE_TIER"),
           ("Committed use discount: CPU", "COMMITTED_USAGE_DISCOUNT"), ("Promotion", "PROMOTION")]


def ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def row(account, project, sku, start, cost, cost_type="regular", credits=(), adjustment=None):
    pid, number, pname, plabels = project
    sid, sdesc, kid, kdesc, unit, punit, amount, pamount = sku
    invoice = (start - timedelta(hours=8)).strftime("%Y%m")  # invoices follow US/Pacific
    r = {
        "billing_account_id": account,
        "service": {"id": sid, "description": sdesc},
        "sku": {"id": kid, "description": kdesc},
        "usage_start_time": ts(start),
        "usage_end_time": ts(start + timedelta(hours=1)),
        "project": {"id": pid, "number": number, "name": pname,
                    "labels": [{"key": k, "value": v} for k, v in plabels],
                    "ancestry_numbers": f"/1234/{number}/"},
        "labels": [{"key": "app", "value": rng.choice(["checkout", "search", "etl"])}] if rng.random() < 0.7 else [],
        "system_labels": [{"key": "compute.googleapis.com/machine_spec", "value": "e2-standard-4"}] if sid == "6F81-5844-456A" else [],
        "location": {"location": "us-central1", "country": "US", "region": "us-central1", "zone": "us-central1-a"},
        "export_time": ts(start + timedelta(hours=30)),
        "cost": cost,
        "cost_at_list": cost,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {"amount": amount, "unit": unit, "amount_in_pricing_units": pamount, "pricing_unit": punit},
        "credits": [{"name": n, "amount": a, "full_name": "", "id": n, "type": t} for (n, t), a in credits],
        "invoice": {"month": invoice},
        "cost_type": cost_type,
    }
    if adjustment:
        r["adjustment_info"] = adjustment
    return r


rows = []
start = datetime(2024, 1, 1, 8, tzinfo=timezone.utc)
for hour in range(0, 24 * 90, 6):
    t = start + timedelta(hours=hour)
    for _ in range(3):
        account, *project = rng.choice(PROJECTS)
        sku = rng.choice(SKUS)
        cost = round(rng.lognormvariate(0, 1.2), 6)
        credits = []
        if rng.random() < 0.3:
            credit = rng.choice(CREDITS)
            credits.append((credit, -round(cost * rng.uniform(0.05, 0.3), 6)))
        rows.append(row(account, tuple(project), sku, t, cost, credits=credits))
for month in ("01", "02", "03"):
    t = datetime(2024, int(month), 28, 12, tzinfo=timezone.utc)
    for account in ("012345-6789AB-CDEF01", "98A7B6-C5D4E3-F2A1B0"):
        project = next(p[1:] for p in PROJECTS if p[0] == account)
        rows.append(row(account, project, SKUS[0], t, 12.5, cost_type="tax"))
rows.append(row("012345-6789AB-CDEF01", PROJECTS[0][1:], SKUS[0], datetime(2024, 3, 5, 12, tzinfo=timezone.utc),
                -3.25, cost_type="adjustment",
                adjustment={"id": "adj-2024-03", "description": "Correction of February usage",
                            "mode": "PARTIAL_CORRECTION", "type": "USAGE_CORRECTION"}))
with gzip.GzipFile("gcp_billing_export_2024q1.jsonl.gz", "wb", mtime=0) as f:
    for r in rows:
        f.write((json.dumps(r) + "\n").encode())
print(len(rows), "rows")
