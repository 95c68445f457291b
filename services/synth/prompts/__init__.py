"""The captioner's prompts as data (SPEC §3.3–3.4): one YAML file per prompt in this folder, each
with its name, version, template, the images it is shown, the choices it is given (TI2V's four
strategies, TV2V's four relations) and the JSON schema its reply must validate against."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROMPT_NAMES = ("video_caption", "frame_caption", "composed_image", "composed_video")
_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    template: str
    images: str
    schema: dict[str, Any]
    choices: tuple[str, ...] = ()

    def render(self, **values: Any) -> str:
        return self.template.format(**values).strip()

    def validate(self, reply: Any) -> None:
        """Raise ``jsonschema.ValidationError`` when ``reply`` breaks the prompt's schema."""
        import jsonschema

        jsonschema.validate(reply, self.schema)


@cache
def load(name: str) -> Prompt:
    data = yaml.safe_load((_DIR / f"{name}.yaml").read_text())
    if data.get("name") != name:
        raise ValueError(f"prompt file {name}.yaml names itself {data.get('name')!r}")
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(data["schema"])
    return Prompt(
        name=name,
        version=str(data["version"]),
        template=data["template"],
        images=data["images"],
        schema=data["schema"],
        choices=tuple(data.get("choices", ())),
    )


def versions() -> str:
    """One version string naming every prompt's version (what a caption row records)."""
    return "+".join(load(n).version for n in PROMPT_NAMES)
