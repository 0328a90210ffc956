"""A new site's grid region, from where it is, when the file does not say: the eGRID subregion in
the US (from the state, refined by ZIP code in New York, the one state whose subregions split
its population), the country elsewhere (its bidding zone: DE, GB, ... as the emissions factors
name them).

A state's subregion is the one most of its people are served by (eGRID 2022 maps; states split
between subregions, such as Illinois or Pennsylvania, get their larger part). That is a guess:
the import says so, naming the site and what the region was read from, and
`reports/emissions_factors/site_overrides.csv` corrects it. A US site of unknown state gets the
national average ("US"), also said.
"""

from __future__ import annotations

import polars as pl

STATE_SUBREGION = {
    "AL": "SRSO", "AK": "AKGD", "AZ": "AZNM", "AR": "SRMV", "CA": "CAMX", "CO": "RMPA",
    "CT": "NEWE", "DE": "RFCE", "DC": "RFCE", "FL": "FRCC", "GA": "SRSO", "HI": "HIOA",
    "ID": "NWPP", "IL": "RFCW", "IN": "RFCW", "IA": "MROW", "KS": "SPNO", "KY": "SRTV",
    "LA": "SRMV", "ME": "NEWE", "MD": "RFCE", "MA": "NEWE", "MI": "RFCM", "MN": "MROW",
    "MS": "SRMV", "MO": "SRMW", "MT": "NWPP", "NE": "MROW", "NV": "AZNM", "NH": "NEWE",
    "NJ": "RFCE", "NM": "AZNM", "NY": "NYUP", "NC": "SRVC", "ND": "MROW", "OH": "RFCW",
    "OK": "SPSO", "OR": "NWPP", "PA": "RFCE", "RI": "NEWE", "SC": "SRVC", "SD": "MROW",
    "TN": "SRTV", "TX": "ERCT", "UT": "NWPP", "VT": "NEWE", "VA": "SRVC", "WA": "NWPP",
    "WV": "RFCW", "WI": "MROE", "WY": "RMPA", "PR": "PRMS",
}  # fmt: skip
STATE_NAMES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "district of columbia": "DC",
    "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL",
    "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY",
    "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
    "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI",
    "wyoming": "WY", "puerto rico": "PR",
}  # fmt: skip
# New York by the ZIP code's first three digits: New York City and Westchester, Long Island
NY_ZIP3 = {
    **{z: "NYCW" for z in ("100", "101", "102", "103", "104", "105", "106", "107", "108")},
    **{z: "NYCW" for z in ("110", "111", "112", "113", "114", "116")},
    **{z: "NYLI" for z in ("115", "117", "118", "119")},
}
REGION = pl.Struct({"grid_region": pl.String, "region_from": pl.String})


def grid_region(country: str | None, state: str | None, postal_code: str | None) -> dict:
    """{grid_region, region_from}: the region and what it was read from (None: no region)."""
    if not country:
        return {"grid_region": None, "region_from": None}
    if country != "US":
        return {"grid_region": country, "region_from": f"the country ({country})"}
    code = (state or "").strip()
    code = STATE_NAMES.get(code.lower(), code.upper())
    zip3 = (postal_code or "").strip()[:3]
    if code == "NY" and zip3 in NY_ZIP3:
        return {"grid_region": NY_ZIP3[zip3], "region_from": f"the ZIP code ({postal_code})"}
    if code in STATE_SUBREGION:
        return {"grid_region": STATE_SUBREGION[code], "region_from": f"the state ({code})"}
    return {"grid_region": "US", "region_from": "the country (US; state unknown)"}


def region_columns(country: pl.Expr, state: pl.Expr, postal_code: pl.Expr) -> dict[str, pl.Expr]:
    """`site_grid_region` and `site_region_from` of the SESSIONS frame (for a `select(**...)`)."""
    found = pl.struct(country=country, state=state, postal_code=postal_code).map_elements(
        lambda r: grid_region(r["country"], r["state"], r["postal_code"]), return_dtype=REGION
    )
    return {
        "site_grid_region": found.struct.field("grid_region"),
        "site_region_from": found.struct.field("region_from"),
    }
