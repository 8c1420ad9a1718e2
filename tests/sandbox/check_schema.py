"""Checks schema/mldeploy.schema.json with a JSON Schema validator, as an editor would use it:
every example's mldeploy.toml and the README's annotated mldeploy.toml are valid against it, and
an unknown key, a misspelt value of a closed set, a wrong type or a null-free mistake is not.
Prints one "ok" line per check; exits 1 on the first failure."""

import json
import pathlib
import sys
import tomllib

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]
schema = json.loads((ROOT / "schema" / "mldeploy.schema.json").read_text())
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)


def errors(config):
    return [e.message for e in validator.iter_errors(config)]


def expect_valid(name, text):
    found = errors(tomllib.loads(text))
    if found:
        sys.exit(f"FAIL {name} is refused by the schema: {found}")
    print(f"ok   {name} is valid")


def expect_refused(name, text, words):
    found = errors(tomllib.loads(text))
    if not any(words in message for message in found):
        sys.exit(f"FAIL {name}: expected an error saying {words!r}, got {found}")
    print(f"ok   {name} is refused ({words})")


for example in sorted((ROOT / "examples").glob("*/mldeploy.toml")):
    expect_valid(str(example.relative_to(ROOT)), example.read_text())

readme = (ROOT / "README.md").read_text()
block = readme.split("## mldeploy.toml\n", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
expect_valid("README.md's mldeploy.toml", block)

BASE = '[project]\nname = "housing"\n[model]\nbucket = "my-models"\npath = "m/{version}"\n'
expect_refused("an unknown key", BASE + "[service]\nmemroy = 512\n", "'memroy' was unexpected")
expect_refused("an unknown strategy", BASE + '[deploy]\nstrategy = "bluegreen"\n', "is not one of")
expect_refused("a port as text", BASE + '[service]\nport = "80"\n', "is not of type 'integer'")
expect_refused(
    "an unknown key in an environment", BASE + "[env.prod.service]\nmemroy = 512\n", "'memroy' was unexpected"
)
expect_refused("an environment name in capitals", BASE + "[env.Prod.service]\ncpu = 512\n", "does not match")
