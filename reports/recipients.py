"""Who receives which dashboard.

The schema has no "operator": a deployment serves one or more operators, each operator's
dashboard covers some sites (or all), and site managers receive their own site's dashboard.
That mapping is configuration, not data, so it lives in a YAML file:

```yaml
operators:
  - name: Demo Charging Network       # shown in the subject and the page title
    sites: all                        # or a list of site ids (default: all)
    to: [ops@example.com, "Night Desk <night@example.com>"]
    cc: []                            # optional
sites:                                # optional: per-site dashboards
  SITE-001:
    to: [manager-1@example.com]
```

| variable | default | meaning |
| --- | --- | --- |
| CHARGEOPS_DASHBOARD_RECIPIENTS | unset | path of that YAML file |
| CHARGEOPS_DASHBOARD_TO | unset | without the file: comma-separated addresses receiving the network dashboard |
| CHARGEOPS_NETWORK_NAME | `chargeops network` | the network dashboard's title without the file |

With neither variable, every dashboard (network and per site) is written with no recipients.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses
from pathlib import Path

import yaml

from chargeops.settings import ConfigError

_TOP_KEYS = {"operators", "sites"}
_OPERATOR_KEYS = {"name", "sites", "to", "cc"}
_SITE_KEYS = {"to", "cc"}


@dataclass(frozen=True)
class Audience:
    key: str  # folder-safe id: "operator-<slug of name>" or "site-<slug of site_id>"
    title: str  # operator name, or the site's name from the database (fallback site_id)
    scope: str  # "operator" | "site"
    site_ids: tuple[str, ...] | None  # None = every site
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()


def slug(text: str) -> str:
    """Lower-case [a-z0-9-] (accents folded), safe as a folder or file name; never empty."""
    folded = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    ascii_text = folded.encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-")
    return out or "unnamed"


def _unique_keys(audiences: list[Audience]) -> list[Audience]:
    """Append -2, -3 ... to keys already taken ("Straße" and "Strasse" must not share a folder)."""
    taken: set[str] = set()
    out = []
    for a in audiences:
        key, n = a.key, 1
        while key in taken:
            n += 1
            key = f"{a.key}-{n}"
        taken.add(key)
        out.append(a if key == a.key else Audience(key, a.title, a.scope, a.site_ids, a.to, a.cc))
    return out


def parse_addresses(value: object, where: str) -> tuple[str, ...]:
    """Addresses from a list (or a comma-separated string), normalised to "Name <a@b>" / "a@b";
    ConfigError naming `where` for anything a relay would refuse or that could inject headers."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise ConfigError(f"{where}: expected a list of e-mail addresses, got {value!r}")
    out: list[str] = []
    for item in items:
        if "\r" in item or "\n" in item:
            raise ConfigError(f"{where}: address {item!r} contains a line break")
        if not item.strip():
            raise ConfigError(f"{where}: an address is empty")
        parsed = getaddresses([item])
        for name, addr in parsed:
            if "@" not in addr or any(c.isspace() for c in addr):
                raise ConfigError(f"{where}: {item!r} is not an e-mail address")
            try:
                address = Address(display_name=name, addr_spec=addr)
            except (ValueError, IndexError, HeaderParseError):
                address = None
            if address is None or not address.username or not address.domain:
                raise ConfigError(f"{where}: {item!r} is not an e-mail address")
            out.append(str(address))
        if not parsed:
            raise ConfigError(f"{where}: {item!r} is not an e-mail address")
    return tuple(dict.fromkeys(out))


def _known(sites: Mapping[str, str]) -> str:
    ids = sorted(sites)
    if not ids:
        return "the database has no sites"
    more = f", ... ({len(ids)} in all)" if len(ids) > 5 else ""
    return f"known: {', '.join(ids[:5])}{more}"


def _check_keys(entry: object, allowed: set[str], where: str) -> dict:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(sorted(allowed))}")
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    return entry


def load(path: Path, sites: Mapping[str, str]) -> list[Audience]:
    """The audiences of a recipients file, checked against the database's sites (id -> name)."""
    path = Path(path)
    src = f"dashboard recipients file {path}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{src}: cannot read it ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{src}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{src}: bad YAML{at} ({problem})") from None
    doc = _check_keys({} if doc is None else doc, _TOP_KEYS, src)
    operators = doc.get("operators") or []
    site_entries = doc.get("sites") or {}
    if not isinstance(operators, list):
        raise ConfigError(f"{src}: 'operators' must be a list")
    if not isinstance(site_entries, dict):
        raise ConfigError(f"{src}: 'sites' must be a mapping of site id to recipients")
    if not operators and not site_entries:
        raise ConfigError(f"{src}: lists no operators and no sites")

    audiences: list[Audience] = []
    names: set[str] = set()
    for i, entry in enumerate(operators, start=1):
        where = f"{src}: operators[{i}]"
        entry = _check_keys(entry, _OPERATOR_KEYS, where)
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: 'name' is missing or empty")
        name = name.strip()
        where = f"{src}: operator {name!r}"
        if "\r" in name or "\n" in name:
            raise ConfigError(f"{where}: the name contains a line break")
        if name.casefold() in names:
            raise ConfigError(f"{where}: the name is used twice")
        names.add(name.casefold())
        scope = entry.get("sites", "all")
        if scope == "all":
            site_ids = None
        elif isinstance(scope, list) and scope:
            site_ids = tuple(dict.fromkeys(str(s) for s in scope))
            unknown = [s for s in site_ids if s not in sites]
            if unknown:
                raise ConfigError(
                    f"{where}: unknown site id(s) {', '.join(unknown)} ({_known(sites)})"
                )
        else:
            raise ConfigError(f"{where}: 'sites' must be 'all' or a non-empty list of site ids")
        to = parse_addresses(entry.get("to"), f"{where} to")
        if not to:
            raise ConfigError(f"{where}: no recipients ('to' is missing or empty)")
        cc = parse_addresses(entry.get("cc"), f"{where} cc")
        audiences.append(Audience(f"operator-{slug(name)}", name, "operator", site_ids, to, cc))

    for site_id, entry in site_entries.items():
        site_id = str(site_id)
        where = f"{src}: sites {site_id!r}"
        if site_id not in sites:
            raise ConfigError(f"{where}: unknown site id ({_known(sites)})")
        entry = _check_keys(entry, _SITE_KEYS, where)
        to = parse_addresses(entry.get("to"), f"{where} to")
        if not to:
            raise ConfigError(f"{where}: no recipients ('to' is missing or empty)")
        cc = parse_addresses(entry.get("cc"), f"{where} cc")
        title = sites[site_id] or site_id
        audiences.append(Audience(f"site-{slug(site_id)}", title, "site", (site_id,), to, cc))
    return _unique_keys(audiences)


def default_audiences(
    sites: Mapping[str, str], network_name: str = "chargeops network"
) -> list[Audience]:
    """The whole network plus one per site, with no recipients: files are written, none sent."""
    audiences = [Audience(f"operator-{slug(network_name)}", network_name, "operator", None, ())]
    audiences += [
        Audience(f"site-{slug(sid)}", sites[sid] or sid, "site", (sid,), ())
        for sid in sorted(sites)
    ]
    return _unique_keys(audiences)


def from_env(
    sites: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    path: str | Path | None = None,
) -> list[Audience]:
    """The recipients file (`path`, e.g. a CLI flag or resource field, else
    CHARGEOPS_DASHBOARD_RECIPIENTS), else CHARGEOPS_DASHBOARD_TO for the network, else the
    defaults."""
    env = os.environ if env is None else env
    network_name = env.get("CHARGEOPS_NETWORK_NAME", "").strip() or "chargeops network"
    if "\r" in network_name or "\n" in network_name:
        raise ConfigError("CHARGEOPS_NETWORK_NAME contains a line break")
    path = str(path or "").strip() or env.get("CHARGEOPS_DASHBOARD_RECIPIENTS", "").strip()
    if path:
        return load(Path(path), sites)
    raw_to = env.get("CHARGEOPS_DASHBOARD_TO", "").strip()
    if raw_to:
        to = parse_addresses(raw_to, "CHARGEOPS_DASHBOARD_TO")
        return [Audience(f"operator-{slug(network_name)}", network_name, "operator", None, to)]
    return default_audiences(sites, network_name)
