"""The company's look, from the admin's configuration: its colour as /brand.css, its logo at
/brand/logo. Both are checked when the app starts: a typo shows then, not as a page in the
wrong colours or a broken image."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from flask import Blueprint, abort, current_app, request, send_file

bp = Blueprint("brand", __name__)
log = logging.getLogger(__name__)

HEX_COLOUR = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})")
LOGO_TYPES = {
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
# White text on a brand-600 button: WCAG AA asks for 4.5:1 for normal text.
READABLE_CONTRAST = 4.5
CACHE_SECONDS = 3600  # the look changes only when the server restarts


class BrandConfigurationError(ValueError):
    """A BRAND_* variable the app cannot start with."""


def brand_colour(value: str) -> str:
    """BRAND_COLOR as CSS ("" for Causerie's own); anything but a hex colour refuses to start,
    since it goes into a stylesheet as it is."""
    value = value.strip().lower()
    if value and not HEX_COLOUR.fullmatch(value):
        raise BrandConfigurationError(
            f"BRAND_COLOR must be a hex colour such as #0a6e4f (or empty), not {value!r}."
        )
    return value


def brand_logo(value: str) -> str:
    """BRAND_LOGO as an absolute path ("" for none); a missing file or an unknown type refuses
    to start."""
    if not value.strip():
        return ""
    path = Path(value.strip()).expanduser().resolve()
    if path.suffix.lower() not in LOGO_TYPES:
        kinds = ", ".join(sorted(LOGO_TYPES))
        raise BrandConfigurationError(f"BRAND_LOGO must be an image file ({kinds}), not {str(path)!r}.")
    if not path.is_file():
        raise BrandConfigurationError(f"BRAND_LOGO names a file that does not exist: {str(path)!r}.")
    return str(path)


def contrast_with_white(colour: str) -> float:
    """The WCAG contrast ratio of white text on `colour` (#rgb or #rrggbb)."""
    digits = colour[1:] if len(colour) == 7 else "".join(c * 2 for c in colour[1:])
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


@bp.record_once
def _check_configuration(state) -> None:
    from app.security import PUBLIC_ENDPOINTS

    config = state.app.config
    config["BRAND_COLOR"] = brand_colour(config.get("BRAND_COLOR", ""))
    config["BRAND_LOGO"] = brand_logo(config.get("BRAND_LOGO", ""))
    colour = config["BRAND_COLOR"]
    if colour and contrast_with_white(colour) < READABLE_CONTRAST:
        log.warning(
            "BRAND_COLOR %s: white text on it has a contrast of %.1f:1, under %.1f:1; pick a darker one",
            colour,
            contrast_with_white(colour),
            READABLE_CONTRAST,
        )
    # The sign-in page wears the company's look too.
    PUBLIC_ENDPOINTS.update({"brand.stylesheet", "brand.logo"})


@bp.get("/brand.css")
def stylesheet():
    """The company's colour, loaded after app.css: every brand-* shade is mixed from it."""
    colour = current_app.config["BRAND_COLOR"]
    response = current_app.response_class(
        f":root {{ --brand: {colour}; }}\n" if colour else "", mimetype="text/css"
    )
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/brand/logo")
def logo():
    """The company's logo, 404 when the admin gave none."""
    path = current_app.config["BRAND_LOGO"]
    if not path:
        abort(404)
    return send_file(path, mimetype=LOGO_TYPES[Path(path).suffix.lower()], max_age=CACHE_SECONDS)
