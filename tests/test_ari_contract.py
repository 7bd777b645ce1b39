"""Every REST path, method and query parameter the ARI layer uses exists in the Swagger files
that ship with the Asterisk we run."""

import json
import re

import pytest

from ivr.cli import asterisk_config
from ivr.provision import asterisk as provision
from ivr.settings import Settings
from ivr.telephony.rest import OPS


@pytest.fixture(scope="module")
def swagger(base_settings: Settings, asterisk: object) -> dict[tuple[str, str], set[str]]:
    folder = provision.rest_api_dir(asterisk_config(base_settings))
    files = sorted(folder.glob("*.json"))
    assert files, f"no Swagger files in {folder}"
    ops: dict[tuple[str, str], set[str]] = {}
    for path in files:
        doc = json.loads(path.read_text())
        for api in doc.get("apis", []):
            for operation in api.get("operations", []):
                params = {p["name"] for p in operation.get("parameters", [])
                          if p.get("paramType") in ("query", "body")}
                ops[(operation["httpMethod"], api["path"])] = params
    return ops


@pytest.mark.parametrize("name", sorted(OPS))
def test_operation_exists_in_asterisk_swagger(
    name: str, swagger: dict[tuple[str, str], set[str]]
) -> None:
    op = OPS[name]
    key = (op.method, op.path)
    assert key in swagger, f"{name}: {op.method} {op.path} is not in Asterisk's ARI"
    missing = op.params - swagger[key]
    assert not missing, f"{name}: parameters {sorted(missing)} are not in Asterisk's ARI"
    if op.body:
        assert op.body in swagger[key]


def test_path_placeholders_are_swagger_names() -> None:
    for name, op in OPS.items():
        for placeholder in re.findall(r"{(\w+)}", op.path):
            assert placeholder in ("channelId", "bridgeId", "playbackId", "recordingName",
                                   "snoopId", "applicationName", "tech", "configClass",
                                   "objectType", "id"), name
