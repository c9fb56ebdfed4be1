"""``python -m datasets validate PATH [--json]``: the ingest's validation (compiled pass, else streaming) and
statistics, run locally on an annotation file. Exit 0 when valid, 1 with the report."""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="validate a COCO / YouTube-VIS / panoptic annotation file")
    v.add_argument("path")
    v.add_argument("--json", action="store_true", help="print the report and statistics as JSON")
    args = parser.parse_args(argv)
    # the configured limits are the only setting read; datasets.validation imports no
    # model, so the apps are not set up (that alone costs about a second of CPU)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
    from datasets.validation import validate_annotation_file

    if not os.path.isfile(args.path):
        print(f"{args.path}: no such file", file=sys.stderr)
        return 2
    result = validate_annotation_file(args.path)
    if args.json:
        print(json.dumps({"report": result.report, "statistics": result.statistics}, indent=2))
    elif result.valid:
        s = result.statistics
        print(f"valid {result.format}: {s['images']} images, {s['instances']} instances, {len(s['categories'])} categories")
    else:
        print(f"invalid ({result.report['error_count']} errors):")
        for e in result.report["errors"]:
            print(f"  {e['code']:<24} {e['location']}: {e['message']}")
        if result.report["truncated"]:
            print(f"  ... and {result.report['error_count'] - len(result.report['errors'])} more")
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
