"""Which speaker each input channel carries: the ``--roles`` list checked against the input."""

from __future__ import annotations

from session_monitor.errors import InputError
from session_monitor.events import SPEAKERS
from session_monitor.settings import RolesSettings

__all__ = ["parse_roles"]


def parse_roles(text: str | None, channels: int, settings: RolesSettings) -> list[str]:
    """Speaker of each channel; refuses a list that does not fit the channel count.

    Parameters
    ----------
    text : the ``--roles`` value (``"therapist,patient"``), or None for the default of ``settings``
    channels : the input's channel count
    settings : the ``[roles]`` section (defaults for mono and stereo input)
    """
    if text is None:
        if channels == 1:
            return [settings.mono]
        if channels == len(settings.stereo):
            return list(settings.stereo)
        raise InputError(
            f"input has {channels} channels; give --roles with {channels} names "
            "(therapist, patient, unknown), e.g. --roles " + ",".join(["unknown"] * channels)
        )
    roles = [r.strip() for r in text.split(",")]
    for role in roles:
        if role not in SPEAKERS:  # unknown: an unused channel (mono: attribute it)
            raise InputError(f"--roles: {role!r} is not a role; use therapist, patient or unknown")
    if len(roles) != channels:
        raise InputError(f"--roles names {len(roles)} speaker(s) but the input has {channels} channel(s); "
                         f"give {channels}")
    if len(set(roles) - {"unknown"}) != len([r for r in roles if r != "unknown"]):
        raise InputError("--roles: each of therapist and patient may appear once")
    return roles
