"""A conversation as the prompt text a GGUF model expects, through its own chat template.

Shared by both llama.cpp engines (llama-server and llama-cpp-python in process), so a model is
shown exactly the same prompt whichever runs it. The stored answers go back into the template
as they were written, untouched: the text re-tokenises to the tokens the model generated, and
the next turn's prompt starts with the previous one, which the prompt cache then skips.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from app.llm.thinking import prompt_opens_thinking
from app.llm.types import ChatMessage

# Used when a GGUF file carries no chat template (base models): plain turns.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
# With plain turns, a base model writes the next turn itself: the answer ends where it begins.
FALLBACK_STOPS = ("\nUser:",)


@dataclass(frozen=True)
class Prompt:
    text: str
    opened: bool  # it ends inside an opened <think> block: the stream starts as thinking
    add_bos: bool  # the template did not write the BOS token: the tokenizer must add it


class ChatFormat:
    """A model's chat template and the special tokens it refers to."""

    def __init__(self, template: str, bos: str, eos: str) -> None:
        self.template = template or FALLBACK_TEMPLATE
        self.bos = bos
        self.eos = eos

    @property
    def thinks(self) -> bool:
        """A reasoning model: its template knows <think>."""
        return "<think>" in self.template

    @property
    def stops(self) -> tuple[str, ...]:
        """Texts (not tokens) that end an answer: see FALLBACK_STOPS."""
        return FALLBACK_STOPS if self.template == FALLBACK_TEMPLATE else ()

    @cached_property
    def _formatter(self):
        # llama-cpp-python's renderer: a sandboxed Jinja environment with the helpers that
        # Hugging Face templates call (raise_exception, strftime_now, tojson).
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        return Jinja2ChatFormatter(template=self.template, eos_token=self.eos, bos_token=self.bos)

    def check(self) -> None:
        """Raise when the template cannot be compiled (a bad file): before any answer needs it."""
        self._formatter  # noqa: B018

    def render(self, messages: list[ChatMessage], close_thinking: bool = False) -> Prompt:
        """The prompt for `messages`, ready for the model's answer.

        DeepSeek-R1 distills: the template opens <think> itself, the model only closes it.
        Thinking switched off: the model is handed an empty, closed thinking block, as Qwen3's
        `enable_thinking=False` does, and answers at once.
        """
        rendered = self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        text, opened = rendered.prompt, prompt_opens_thinking(rendered.prompt)
        if close_thinking and self.thinks:
            text += "\n\n</think>\n\n" if opened else "<think>\n\n</think>\n\n"
            opened = False
        # The template may write the BOS token itself; when it does not (the plain-turns
        # fallback, some GGUF templates), the tokenizer adds it: without it a model like Gemma 3
        # babbles. The vocabulary still decides whether the model wants one at all.
        return Prompt(text, opened, add_bos=not (self.bos and text.startswith(self.bos)))
