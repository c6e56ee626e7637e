"""A PIN-only keypad that reads its codes from a JSON file it watches: no log, clock or motor."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from lockgate import drivers as lg

KEYPAD = lg.Capabilities(
    slots=20,
    max_batch=20,
    kinds=frozenset({lg.CredentialKind.CODE}),
    online_validation=False,
    has_audit_log=False,
    has_clock=False,
    remote_actuation=False,
)


class PinpadOptions(lg.DriverOptions):
    type: Literal["pinpad"] = "pinpad"
    codes_file: Path


class PinpadDriver(lg.LockDriver):
    type_name = "pinpad"
    options_model = PinpadOptions
    options: PinpadOptions

    def _load(self) -> dict[str, dict[str, str]]:
        path = self.options.codes_file
        return json.loads(path.read_text()) if path.exists() else {}

    def _save(self, codes: dict[str, dict[str, str]]) -> None:
        tmp = self.options.codes_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(codes))
        tmp.replace(self.options.codes_file)  # the keypad never reads half a file

    async def capabilities(self) -> lg.Capabilities:
        return KEYPAD

    async def list_credentials(self) -> list[lg.StoredCredential]:
        code, held = lg.CredentialKind.CODE, self._load().items()
        return [lg.StoredCredential(i, code, bytes.fromhex(c["tag"])) for i, c in held]

    async def put_credentials(self, batch: Sequence[lg.Credential]) -> lg.BatchResult:
        codes, failed = self._load(), dict[str, lg.DriverError]()
        for c in batch:  # the gateway plans within KEYPAD.slots; the PIN rules are checked here
            if problem := KEYPAD.code_problem(pin := c.secret.decode("ascii", "replace")):
                failed[c.credential_id] = lg.CodeRuleError(problem, lock_id=self.lock_id)
            else:
                codes[c.credential_id] = {"pin": pin, "tag": c.tag.hex()}
        self._save(codes)
        return lg.BatchResult(failed)

    async def delete_credentials(self, credential_ids: Sequence[str]) -> lg.BatchResult:
        self._save({i: c for i, c in self._load().items() if i not in credential_ids})
        return lg.BatchResult()
