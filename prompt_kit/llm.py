"""Ask an OpenAI-compatible server for class words, validate the answer, re-ask, cache.

One request lists every class of the taxonomy and asks for one JSON object (the shape is in
``llm_answers``). An invalid answer is sent back with the validation error (bounded re-asks);
transport errors (429, 5xx, timeouts) are retried by the openai client itself.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai

from prompt_kit.errors import PromptKitError
from prompt_kit.llm_answers import InvalidAnswer, parse_json_object, validate_answer
from prompt_kit.llm_cache import AnswerCache, answer_cache_key, default_cache_dir
from prompt_kit.prompt_set import LLMSource
from prompt_kit.styles import MIN_CANDIDATES, WORDS_PER_PROMPT, PromptStyle, get_style
from prompt_kit.taxonomy import Taxonomy
from prompt_kit.templates import PromptTemplates

logger = logging.getLogger(__name__)

_PLACEHOLDER_KEY = "no-key"  # local servers need none; the client insists on a string


@dataclass
class LLMSettings:
    """How to ask: model and server, sampling, retries and the cache. The key comes from the env."""

    model: str
    base_url: str | None = None
    temperature: float = 0.7
    top_p: float | None = None
    seed: int | None = None
    samples: int = 1
    timeout: float = 60.0
    http_retries: int = 2
    reasks: int = 2
    cache_dir: Path | None = None
    use_cache: bool = True
    replay: bool = False

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None


@dataclass
class LLMResult:
    """Validated answers (one per sample) and what they cost."""

    answers: list[dict[str, dict]]
    source: LLMSource
    usage: dict[str, int] = field(default_factory=dict)


def public_url(url: str | None) -> str | None:
    """The URL without user info or query string, safe to record (keys sometimes hide there)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class ClassWordsClient:
    """Requests class words for one taxonomy and style; see :func:`request_class_answers`."""

    def __init__(self, settings: LLMSettings, templates: PromptTemplates) -> None:
        if settings.samples < 1:
            raise PromptKitError("--samples must be at least 1")
        if settings.reasks < 0:
            raise PromptKitError("--reasks must be 0 or more")
        self.settings = settings
        self.templates = templates
        self.base_url = settings.resolved_base_url()
        self.cache = AnswerCache(settings.cache_dir or default_cache_dir())
        self._client: openai.OpenAI | None = None
        self._json_mode = True

    @property
    def client(self) -> openai.OpenAI:
        if self._client is None:
            self._client = openai.OpenAI(
                api_key=os.environ.get("OPENAI_API_KEY") or _PLACEHOLDER_KEY,
                base_url=self.base_url,
                timeout=self.settings.timeout,
                max_retries=self.settings.http_retries,
            )
        return self._client

    def messages(self, taxonomy: Taxonomy, style: str | PromptStyle) -> tuple[list[dict[str, str]], str]:
        template = get_style(style).request_template_name
        if template is None:
            raise PromptKitError(f"style {get_style(style).name!r} needs no LLM: drop --llm")
        user = self.templates.render(
            template,
            dataset=taxonomy.name,
            classes=[{"name": info.name, "label": info.label} for info in taxonomy.classes],
            n_words=WORDS_PER_PROMPT,
            n_candidates=MIN_CANDIDATES,
        )
        system = self.templates.render("llm/system.j2").strip()
        return [{"role": "system", "content": system}, {"role": "user", "content": user.strip()}], template

    def _call(self, messages: list[dict[str, str]], seed: int | None) -> tuple[str, dict[str, int]]:
        kwargs: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        kwargs["temperature"] = self.settings.temperature
        if self.settings.top_p is not None:
            kwargs["top_p"] = self.settings.top_p
        if seed is not None:
            kwargs["seed"] = seed
        where = public_url(self.base_url) or "the default OpenAI endpoint"
        try:
            if self._json_mode:
                try:
                    response = self.client.chat.completions.create(response_format={"type": "json_object"}, **kwargs)
                except openai.BadRequestError:
                    # The server has no JSON mode: ask in plain text and parse JSON out of it.
                    self._json_mode = False
                    response = self.client.chat.completions.create(**kwargs)
            else:
                response = self.client.chat.completions.create(**kwargs)
        except openai.AuthenticationError as exc:
            raise PromptKitError(f"{where} refused the API key: set OPENAI_API_KEY", exit_code=1) from exc
        except openai.NotFoundError as exc:
            raise PromptKitError(
                f"{where} has no model {self.settings.model!r} (HTTP 404): check --llm and --base-url",
                exit_code=1,
            ) from exc
        except openai.APITimeoutError as exc:
            raise PromptKitError(
                f"{where} did not answer within {self.settings.timeout:g} s "
                f"({self.settings.http_retries + 1} tries): raise --timeout or check the server",
                exit_code=1,
            ) from exc
        except openai.APIConnectionError as exc:
            raise PromptKitError(f"cannot reach the LLM server at {where}: check --base-url", exit_code=1) from exc
        except openai.APIStatusError as exc:
            raise PromptKitError(
                f"{where} answered HTTP {exc.status_code} after {self.settings.http_retries + 1} tries: "
                "try again later or check the server",
                exit_code=1,
            ) from exc
        except (ValueError, openai.APIResponseValidationError) as exc:  # a body that is not UTF-8 JSON
            logger.warning("%s sent a response that is not a chat completion (%s)", where, type(exc).__name__)
            return "", {}
        if not response.choices:
            return "", {}
        content = response.choices[0].message.content or ""
        usage = {}
        if response.usage is not None:
            usage = {
                "prompt_tokens": response.usage.prompt_tokens or 0,
                "completion_tokens": response.usage.completion_tokens or 0,
                "total_tokens": response.usage.total_tokens or 0,
            }
        return content, usage

    def _ask_until_valid(
        self,
        messages: list[dict[str, str]],
        seed: int | None,
        taxonomy: Taxonomy,
        style: PromptStyle,
        key: str,
        usage: dict[str, int],
    ) -> tuple[dict[str, dict], int]:
        """Ask, validate, and re-ask with the validation error until valid or out of tries."""
        settings = self.settings
        last_error = ""
        for attempt in range(1, settings.reasks + 2):
            content, call_usage = self._call(messages, seed)
            for name, count in call_usage.items():
                usage[name] = usage.get(name, 0) + count
            try:
                answer = validate_answer(parse_json_object(content), taxonomy, style)
            except InvalidAnswer as exc:
                last_error = str(exc)
                logger.warning("invalid answer (try %d): %s", attempt, last_error)
                messages = messages + [
                    {"role": "assistant", "content": content},
                    {
                        "role": "user",
                        "content": f"That answer is invalid: {last_error}. "
                        "Answer again with the complete JSON object only.",
                    },
                ]
                continue
            if settings.use_cache:
                self.cache.put(key, {"content": content, "model": settings.model, "usage": call_usage})
            return answer, attempt
        raise PromptKitError(
            f"the LLM gave no valid answer in {settings.reasks + 1} tries (last problem: {last_error}); "
            "nothing was written: try another model, a lower --temperature or more --reasks",
            exit_code=1,
        )

    def request(self, taxonomy: Taxonomy, style: str | PromptStyle) -> LLMResult:
        """Ask once per sample; each sample gets ``reasks`` more chances after an invalid answer."""
        style = get_style(style)
        base_messages, template_name = self.messages(taxonomy, style)
        settings = self.settings
        answers: list[dict[str, dict]] = []
        usage: dict[str, int] = {}
        attempts = cached = 0
        for sample in range(settings.samples):
            seed = None if settings.seed is None else settings.seed + sample
            # The key names the request, not the conversation: a valid answer reached after
            # re-asks is stored under it too, so --replay rebuilds the set without the server.
            key = answer_cache_key(
                {
                    "base_url": public_url(self.base_url),
                    "model": settings.model,
                    "messages": base_messages,
                    "temperature": settings.temperature,
                    "top_p": settings.top_p,
                    "seed": seed,
                    "sample": sample,
                    "style": style.name,
                }
            )
            record = self.cache.get(key) if settings.use_cache or settings.replay else None
            if record is not None:
                try:
                    answers.append(validate_answer(parse_json_object(record["content"]), taxonomy, style))
                    cached += 1
                    continue
                except (InvalidAnswer, KeyError, TypeError):
                    logger.warning("ignoring an unusable cache entry %s", key)
            if settings.replay:
                raise PromptKitError(
                    f"--replay: no cached answer for key {key} (sample {sample}) in {self.cache.root}; "
                    "run once without --replay to fill the cache"
                )
            answer, tries = self._ask_until_valid(base_messages, seed, taxonomy, style, key, usage)
            answers.append(answer)
            attempts += tries
        source = LLMSource(
            model=settings.model,
            base_url=public_url(self.base_url),
            temperature=settings.temperature,
            top_p=settings.top_p,
            seed=settings.seed,
            samples=settings.samples,
            request_template=self.templates.info(template_name),
            attempts=attempts,
            cached_answers=cached,
            usage=usage,
        )
        return LLMResult(answers=answers, source=source, usage=usage)


def request_class_answers(
    taxonomy: Taxonomy, style: str | PromptStyle, settings: LLMSettings, templates: PromptTemplates | None = None
) -> LLMResult:
    """Validated answers from an LLM for every class of ``taxonomy`` in ``style``."""
    return ClassWordsClient(settings, templates or PromptTemplates()).request(taxonomy, style)
