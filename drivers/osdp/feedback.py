"""The commands a reader gets for a decision: strike, LED, buzzer (libosdp command dicts).

Durations go on the wire in 100 ms units. Output control code 5 turns the output on for
``timer_count`` x 100 ms and then back to its permanent state (off); code 1 turns it off for good
and cancels a timed pulse. LED colours and buzzer codes are OSDP's (``include/osdp.h``).
"""

from __future__ import annotations

from typing import Any

import osdp

from drivers.osdp.options import OsdpOptions

OUTPUT_OFF = 1
"""Permanent state off, cancelling a timed operation."""
OUTPUT_PULSE = 5
"""On for ``timer_count`` x 100 ms, then back to the permanent state."""
LED_SET_TEMPORARY = 2
BUZZER_DEFAULT_TONE = 2
UNIT = 0.1


def ticks(seconds: float, limit: int = 0xFFFF) -> int:
    """Seconds in 100 ms units, rounded, at least 1."""
    return max(1, min(limit, round(seconds / UNIT)))


def strike_pulse(opts: OsdpOptions, seconds: float | None = None) -> dict[str, Any]:
    return {
        "command": osdp.Command.Output,
        "output_no": opts.strike_output,
        "control_code": OUTPUT_PULSE,
        "timer_count": ticks(opts.strike_seconds if seconds is None else seconds),
    }


def strike_off(opts: OsdpOptions) -> dict[str, Any]:
    return {
        "command": osdp.Command.Output,
        "output_no": opts.strike_output,
        "control_code": OUTPUT_OFF,
        "timer_count": 0,
    }


def led(opts: OsdpOptions, colour: int, seconds: float) -> dict[str, Any]:
    t = ticks(seconds)
    return {
        "command": osdp.Command.LED,
        "reader": opts.reader_number,
        "led_number": opts.feedback.led_number,
        "temporary": True,
        "control_code": LED_SET_TEMPORARY,
        "on_count": min(t, 0xFF),
        "off_count": 0,
        "on_color": colour,
        "off_color": colour,
        "timer_count": t,
    }


def buzz(opts: OsdpOptions, beeps: int, on: float, off: float) -> dict[str, Any]:
    return {
        "command": osdp.Command.Buzzer,
        "reader": opts.reader_number,
        "control_code": BUZZER_DEFAULT_TONE,
        "on_count": ticks(on, 0xFF),
        "off_count": ticks(off, 0xFF),
        "rep_count": beeps,
    }


def allow(opts: OsdpOptions) -> list[dict[str, Any]]:
    """Strike first (the door is what the person waits for), then green, then one beep."""
    green = led(opts, osdp.CommandLEDColor.Green, opts.feedback.allow_led_seconds)
    out = [strike_pulse(opts), green]
    if opts.feedback.buzzer and opts.feedback.allow_beeps:
        out.append(buzz(opts, opts.feedback.allow_beeps, 0.2, 0.1))
    return out


def deny(opts: OsdpOptions) -> list[dict[str, Any]]:
    """Red, and the deny buzz (short beeps)."""
    out = [led(opts, osdp.CommandLEDColor.Red, opts.feedback.deny_led_seconds)]
    if opts.feedback.buzzer and opts.feedback.deny_beeps:
        out.append(buzz(opts, opts.feedback.deny_beeps, 0.1, 0.1))
    return out
