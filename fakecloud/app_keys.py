"""Typed keys under which the aiohttp application holds the fake cloud's objects."""

from __future__ import annotations

from aiohttp import web

from fakecloud.control import FakeCloudControl

CONTROL = web.AppKey("fakecloud_control", FakeCloudControl)
API_KEY = web.AppKey("fakecloud_api_key", str)
CONTROL_TOKEN = web.AppKey("fakecloud_control_token", str)
