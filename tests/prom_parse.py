"""Parses a metrics exposition with the Prometheus project's Python client
(prometheus_client), strictly, and prints its families as JSON.

    python prom_parse.py prometheus|openmetrics < exposition

Exits non-zero, with the parser's error, if the text does not parse.
"""
import json
import math
import sys

from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client import parser as prometheus_parser


def number(v):
    return v if math.isfinite(v) else repr(v)


def main():
    fmt = sys.argv[1]
    text = sys.stdin.read()
    module = openmetrics_parser if fmt == "openmetrics" else prometheus_parser
    families = []
    for family in module.text_string_to_metric_families(text):
        families.append({
            "name": family.name,
            "type": family.type,
            "unit": getattr(family, "unit", ""),
            "samples": [
                {"name": s.name, "labels": s.labels, "value": number(s.value)}
                for s in family.samples
            ],
        })
    json.dump(families, sys.stdout)


if __name__ == "__main__":
    main()
