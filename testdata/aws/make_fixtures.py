"""Writes the AWS fixtures that are packed or laid out as AWS delivers them.

- `cur2/billing/`: a CUR 2.0 (Data Exports) export named `billing`, for March 2024,
  in AWS's layout: `data/BILLING_PERIOD=2024-03/billing-00001.csv.gz` and
  `metadata/BILLING_PERIOD=2024-03/billing-Manifest.json` (`dataFiles`, `columns`,
  `billingPeriod`). Map columns (`product`, `resource_tags`, `cost_category`,
  `discount`) are JSON objects, as in AWS's CSV; tag keys are CUR 2.0's `user_*`.
- `cur2_parquet/billing/`: the same export's April 2024 in Parquet (needs pyarrow), as
  Data Exports writes it: doubles for amounts, `map<string,string>` columns and
  `discount` as `map<string,double>`.
- the Detailed Billing Report fixture as AWS delivers it: one CSV inside a zip.

Deterministic (gzip mtime 0, fixed zip timestamps): `python3 testdata/aws/make_fixtures.py`.
"""

import csv
import gzip
import io
import json
import pathlib
import zipfile

HERE = pathlib.Path(__file__).parent

COLUMNS = [
    "bill_bill_type", "bill_billing_entity", "bill_billing_period_end_date",
    "bill_billing_period_start_date", "bill_invoice_id", "bill_invoicing_entity",
    "bill_payer_account_id", "bill_payer_account_name", "cost_category", "discount",
    "discount_bundled_discount", "discount_total_discount", "identity_line_item_id",
    "identity_time_interval", "line_item_availability_zone", "line_item_blended_cost",
    "line_item_blended_rate", "line_item_currency_code", "line_item_line_item_description",
    "line_item_line_item_type", "line_item_net_unblended_cost", "line_item_operation",
    "line_item_product_code", "line_item_resource_id", "line_item_unblended_cost",
    "line_item_unblended_rate", "line_item_usage_account_id", "line_item_usage_account_name",
    "line_item_usage_amount", "line_item_usage_end_date", "line_item_usage_start_date",
    "line_item_usage_type", "pricing_public_on_demand_cost", "pricing_unit", "product",
    "product_region_code", "product_servicecode", "reservation_effective_cost",
    "resource_tags", "savings_plan_savings_plan_effective_cost",
]
TYPES = {c: "string" for c in COLUMNS}
for c in COLUMNS:
    if c.endswith(("_cost", "_rate", "_amount", "_discount")):
        TYPES[c] = "double"
    if c.endswith("_date"):
        TYPES[c] = "timestamp"
for c in ("cost_category", "discount", "product", "resource_tags"):
    TYPES[c] = "map<string,string>" if c != "discount" else "map<string,double>"

EC2 = {"product_name": "Amazon Elastic Compute Cloud", "region": "us-east-1", "instance_type": "t3.micro"}
S3 = {"product_name": "Amazon Simple Storage Service", "region": "us-east-1", "storage_class": "General Purpose"}


def row(i, kind, code, usage_type, cost, amount, product, tags, cc=None, sp="", discount=None,
        description=""):
    usage = kind in ("Usage", "SavingsPlanCoveredUsage") and code == "AmazonEC2"
    start = f"2024-03-0{i}T00:00:00.000Z"
    end = f"2024-03-0{i}T01:00:00.000Z"
    return {
        "bill_bill_type": "Anniversary", "bill_billing_entity": "AWS",
        "bill_billing_period_end_date": "2024-04-01T00:00:00.000Z",
        "bill_billing_period_start_date": "2024-03-01T00:00:00.000Z",
        "bill_invoice_id": "", "bill_invoicing_entity": "Amazon Web Services, Inc.",
        "bill_payer_account_id": "111122223333", "bill_payer_account_name": "Acme Payer",
        "cost_category": json.dumps(cc or {}), "discount": json.dumps(discount or {}),
        "discount_bundled_discount": "", "discount_total_discount": str((discount or {}).get("total_discount", "")),
        "identity_line_item_id": f"c2-{i}", "identity_time_interval": f"{start[:19]}Z/{end[:19]}Z",
        "line_item_availability_zone": "us-east-1a" if usage else "",
        "line_item_blended_cost": cost, "line_item_blended_rate": "",
        "line_item_currency_code": "USD", "line_item_line_item_description": description,
        "line_item_line_item_type": kind, "line_item_net_unblended_cost": "",
        "line_item_operation": "RunInstances" if usage else "",
        "line_item_product_code": code,
        "line_item_resource_id": f"i-0{i}" if usage else "",
        "line_item_unblended_cost": cost, "line_item_unblended_rate": "",
        "line_item_usage_account_id": "444455556666", "line_item_usage_account_name": "Acme Dev",
        "line_item_usage_amount": amount, "line_item_usage_end_date": end,
        "line_item_usage_start_date": start, "line_item_usage_type": usage_type,
        "pricing_public_on_demand_cost": cost if kind == "Usage" else "", "pricing_unit": "Hrs",
        "product": json.dumps(product), "product_region_code": product.get("region", ""),
        "product_servicecode": code, "reservation_effective_cost": "",
        "resource_tags": json.dumps(tags) if tags else "",
        "savings_plan_savings_plan_effective_cost": sp,
    }


ROWS = [
    row(1, "Usage", "AmazonEC2", "BoxUsage:t3.micro", "0.0104", "1", EC2,
        {"user_name": "web-1", "user_team": "platform"}, {"CostCenter": "CC-100"}),
    row(2, "Usage", "AmazonS3", "TimedStorage-ByteHrs", "0.023", "1", S3, {"user_name": "logs"}),
    row(3, "SavingsPlanCoveredUsage", "AmazonEC2", "BoxUsage:m5.large", "0.096", "1", EC2,
        {"user_team": "data"}, sp="0.0624"),
    row(4, "Tax", "AmazonEC2", "", "0.0121", "", EC2, None, description="Tax for product code AmazonEC2"),
    row(5, "EdpDiscount", "AmazonEC2", "", "-0.003", "", EC2, None,
        discount={"total_discount": -0.003, "edp_discount": -0.003}),
]


def cur2():
    base = HERE / "cur2" / "billing"
    data = base / "data" / "BILLING_PERIOD=2024-03" / "billing-00001.csv.gz"
    meta = base / "metadata" / "BILLING_PERIOD=2024-03" / "billing-Manifest.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    meta.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    w = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(ROWS)
    data.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))
    manifest = {
        "version": "1.0",
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:111122223333:export/billing-0a1b2c3d",
        "exportName": "billing",
        "executionId": "0a1b2c3d-0000-4000-8000-000000000001",
        "billingPeriod": {"start": "2024-03-01T00:00:00.000Z", "end": "2024-04-01T00:00:00.000Z"},
        "columns": [{"name": c, "type": TYPES[c]} for c in COLUMNS],
        "dataFiles": [
            "s3://acme-billing/exports/billing/data/BILLING_PERIOD=2024-03/billing-00001.csv.gz"
        ],
        "compression": "GZIP",
        "format": "TEXT_OR_CSV",
    }
    meta.write_text(json.dumps(manifest, indent=2) + "\n")


def cur2_parquet():
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = HERE / "cur2_parquet" / "billing" / "data" / "BILLING_PERIOD=2024-04"
    base.mkdir(parents=True, exist_ok=True)
    rows = [
        row(1, "Usage", "AmazonEC2", "BoxUsage:t3.micro", "0.0208", "2", EC2,
            {"user_name": "web-1", "user_team": "platform"}, {"CostCenter": "CC-100"}),
        row(2, "Usage", "AmazonS3", "TimedStorage-ByteHrs", "0.046", "2", S3, {"user_name": "logs"}),
        row(5, "EdpDiscount", "AmazonEC2", "", "-0.0021", "", EC2, None,
            discount={"total_discount": -0.0021, "edp_discount": -0.0021}),
    ]
    for r in rows:
        for k, v in list(r.items()):
            if isinstance(v, str) and v.startswith("2024-03"):
                r[k] = "2024-04" + v[7:]
        r["bill_billing_period_start_date"] = "2024-04-01T00:00:00.000Z"
        r["bill_billing_period_end_date"] = "2024-05-01T00:00:00.000Z"
        r["identity_line_item_id"] = r["identity_line_item_id"].replace("c2-", "p2-")

    def column(name):
        values = [r[name] for r in rows]
        kind = TYPES[name]
        if kind == "double":
            return pa.array([float(v) if v != "" else None for v in values], pa.float64())
        if kind == "timestamp":
            return pa.array([v[:19] if v else None for v in values], pa.string()).cast(pa.timestamp("ms"))
        if kind.startswith("map"):
            value_type = pa.float64() if name == "discount" else pa.string()
            maps = [list(json.loads(v).items()) if v else [] for v in values]
            return pa.array(maps, pa.map_(pa.string(), value_type))
        return pa.array([v if v != "" else None for v in values], pa.string())

    table = pa.table({c: column(c) for c in COLUMNS})
    pq.write_table(table, base / "billing-00001.snappy.parquet", compression="snappy")


def dbr_zip():
    name = "dbr_111122223333-aws-billing-detailed-line-items-with-resources-and-tags-2015-03.csv"
    with zipfile.ZipFile(HERE / (name[4:] + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name[4:], date_time=(2015, 4, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, (HERE / name).read_bytes())


if __name__ == "__main__":
    cur2()
    cur2_parquet()
    dbr_zip()
