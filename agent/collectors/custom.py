"""Custom:*: node-local inventory from JSON files in SSM's custom inventory format
(`{"SchemaVersion": "1.0", "TypeName": "Custom:Rack", "Content": {...} or [{...}]}`).

One collector, many types: each `*.json` file in the directory gives one type. A file
whose TypeName is readable but whose content breaks SSM's rules makes that type unknown;
a file that names no valid type is reported under the pseudo-type `Custom:*`. No
directory means no custom types. `parse()` is pure.
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Tuple, Union

from .base import CollectorError, Options, read_text

TYPE_NAME = "Custom:*"
MULTI_TYPE = True

TYPE_PATTERN = re.compile(r"^Custom:[A-Z][A-Za-z0-9_.\-]*$")
SCHEMA_VERSION = re.compile(r"^\d{1,6}\.\d{1,6}$")
MAX_TYPE_NAME, MAX_ENTRIES, MAX_ATTRIBUTES, MAX_NAME, MAX_VALUE = 100, 10000, 50, 64, 4096

Result = Union[List[dict], CollectorError]


def collect(options: Options) -> Dict[str, Result]:
    """TypeName -> entries, or -> CollectorError for a type that could not be read."""
    try:
        names = sorted(name for name in os.listdir(options.custom_dir) if name.endswith(".json"))
    except FileNotFoundError:
        return {}
    except OSError as error:
        return {TYPE_NAME: CollectorError(f"cannot list {options.custom_dir}: {error.strerror}")}
    return merge([_load(os.path.join(options.custom_dir, name)) for name in names])


def _load(path: str) -> Tuple[str, str, Result]:
    try:
        type_name, entries = parse(read_text(path))
        return os.path.basename(path), type_name, entries
    except CollectorError as error:
        return os.path.basename(path), _claimed_type(path), CollectorError(f"{os.path.basename(path)}: {error}")


def merge(loaded: List[Tuple[str, str, Result]]) -> Dict[str, Result]:
    """Results by type; two files claiming one type make it unknown, bad files go to Custom:*."""
    results: Dict[str, Result] = {}
    sources: Dict[str, str] = {}
    stray: List[str] = []
    for filename, type_name, result in loaded:
        if not type_name:
            stray.append(str(result))
        elif type_name in sources:
            results[type_name] = CollectorError(
                f"{type_name} is defined by both {sources[type_name]} and {filename}"
            )
        else:
            sources[type_name], results[type_name] = filename, result
    if stray:
        results[TYPE_NAME] = CollectorError("; ".join(stray))
    return results


def parse(text: str) -> Tuple[str, List[dict]]:
    """(TypeName, entries) of one custom inventory file, or CollectorError saying what is wrong."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise CollectorError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise CollectorError("not a JSON object")
    type_name = check_type_name(document.get("TypeName"))
    version = document.get("SchemaVersion")
    if not isinstance(version, str) or not SCHEMA_VERSION.match(version):
        raise CollectorError(f"SchemaVersion {version!r} is not like \"1.0\"")
    content = document.get("Content")
    entries = [content] if isinstance(content, dict) else content
    if not isinstance(entries, list):
        raise CollectorError("Content must be an object or a list of objects")
    if len(entries) > MAX_ENTRIES:
        raise CollectorError(f"Content has {len(entries)} entries, more than {MAX_ENTRIES}")
    return type_name, [check_entry(entry, number) for number, entry in enumerate(entries)]


def check_type_name(type_name: object) -> str:
    if not isinstance(type_name, str) or not TYPE_PATTERN.match(type_name) or len(type_name) > MAX_TYPE_NAME:
        raise CollectorError(
            f"TypeName {type_name!r} is not Custom:<Name> (capital C, name starting with a capital)"
        )
    return type_name


def check_entry(entry: object, number: int) -> dict:
    if not isinstance(entry, dict):
        raise CollectorError(f"Content[{number}] is not an object")
    if len(entry) > MAX_ATTRIBUTES:
        raise CollectorError(f"Content[{number}] has more than {MAX_ATTRIBUTES} attributes")
    for name, value in entry.items():
        if not 1 <= len(name) <= MAX_NAME:
            raise CollectorError(f"Content[{number}] attribute name {name!r} is not 1-{MAX_NAME} characters")
        if not isinstance(value, str):
            raise CollectorError(f"Content[{number}].{name} is not a string (custom inventory holds strings only)")
        if len(value) > MAX_VALUE:
            raise CollectorError(f"Content[{number}].{name} is longer than {MAX_VALUE} characters")
    return entry


def _claimed_type(path: str) -> str:
    """The valid TypeName a broken file claims, if it can be read at all; else ""."""
    try:
        document = json.loads(read_text(path))
        return check_type_name(document.get("TypeName"))
    except (CollectorError, ValueError, AttributeError):
        return ""
