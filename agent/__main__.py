"""Command line of the node agent: `python3 -m agent collect|execute|version`.

`collect` prints one JSON inventory document (schemas/inventory.schema.json) on stdout
and exits 0 even when some types are unknown; 2 means the request itself was wrong.
`execute` hands over to `agent.executor.main()`, imported only then, so inventory works
on an agent built without the executor.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from . import __version__


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "execute":
        return _execute(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "version":
        print(__version__)
        return 0
    return _collect(parser, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m agent", description="plumb node agent")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{collect,execute,version}")
    collect = commands.add_parser("collect", help="print this node's inventory as one JSON document")
    collect.add_argument("--types", nargs="+", metavar="T", help="inventory types to collect (default: all)")
    collect.add_argument("--files", nargs="+", default=[], metavar="PATH", help="paths to report as AWS:File")
    collect.add_argument("--sysctl", nargs="+", default=[], metavar="KEY", help="keys to report as plumb:Sysctl")
    collect.add_argument(
        "--packages", nargs="+", metavar="NAME",
        help="report only these packages in AWS:Application (one query; a name left out is not installed)",
    )
    collect.add_argument("--content", action="store_true", help="include the text of small UTF-8 files")
    collect.add_argument(
        "--content-max-bytes", type=_non_negative, metavar="N",
        help="include the text of UTF-8 files up to N bytes (default 65536; implies --content)",
    )
    collect.add_argument("--custom-dir", metavar="DIR", help="directory of Custom: inventory JSON files")
    collect.add_argument(
        "--apt-cache-dir", metavar="DIR",
        help="where to keep apt's binary cache when apt keeps none (default /var/cache/plumb/apt; '' = never)",
    )
    collect.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="deadline for the whole collection (default 300)"
    )
    collect.add_argument(
        "--refresh-package-lists", action="store_true",
        help="run apt-get update / dnf makecache before reporting plumb:AvailableUpdate (changes apt's lists)",
    )
    commands.add_parser("execute", help="run a document read from stdin (agent.executor)")
    commands.add_parser("version", help="print the agent version")
    return parser


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _collect(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from . import inventory
    from .collectors.base import Options

    given = {
        "content_max_bytes": args.content_max_bytes,
        "custom_dir": args.custom_dir,
        "apt_cache_dir": args.apt_cache_dir,
    }
    options = Options(
        files=tuple(args.files),
        sysctl_keys=tuple(args.sysctl),
        content=args.content or args.content_max_bytes is not None,
        packages=tuple(args.packages) if args.packages is not None else None,
        refresh_package_lists=args.refresh_package_lists,
        **{key: value for key, value in given.items() if value is not None},
    )
    try:
        inventory.select(args.types, options)
    except ValueError as error:
        parser.error(str(error))
    deadline = args.timeout if args.timeout is not None else inventory.DEFAULT_DEADLINE
    document = inventory.collect(args.types, options, deadline)
    sys.stdout.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0


def _execute(argv: List[str]) -> int:
    try:
        from . import executor
    except ImportError as error:
        print(f"plumb agent: execute is not available: {error}", file=sys.stderr)
        return 2
    return executor.main(argv)


if __name__ == "__main__":
    sys.exit(main())
