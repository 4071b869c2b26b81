"""A minimal client for any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, hosted APIs).

`POST {llm_url}/chat/completions` with {"model", "messages", "temperature", "max_tokens"}; the reply text is
choices[0].message.content. Settings: llm_url (base URL, usually ending in /v1), llm_model, llm_api_key.
Every failure a provider can cause (connection, timeout, non-2xx, a body that is not the expected JSON) raises
LLMError with a one-line reason; callers record it as a failed score, never as a score.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from app.errors import Invalid


class LLMError(RuntimeError):
    pass


@dataclass(frozen=True)
class LLMConfig:
    url: str
    model: str
    api_key: str = ""
    timeout_s: float = 60.0
    max_tokens: int = 400
    retries: int = 1  # extra tries on connection errors, timeouts, 429 and 5xx

    def __post_init__(self):
        if not self.url.startswith(("http://", "https://")):
            raise Invalid(f"llm_url {self.url!r} is not an http(s) URL; e.g. http://127.0.0.1:8080/v1")

    @classmethod
    def from_settings(cls, settings, url: str | None = None, model: str | None = None) -> "LLMConfig | None":
        url = url or settings.llm_url
        if not url:
            return None
        return cls(url=url.rstrip("/"), model=model or settings.llm_model or "default", api_key=settings.llm_api_key)


class ChatClient:
    """One httpx.AsyncClient per run; `await chat(messages)` -> reply text."""

    def __init__(self, config: LLMConfig, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(base_url=config.url.rstrip("/") + "/", headers=headers,
                                         timeout=config.timeout_s, transport=transport)

    async def chat(self, messages: list[dict], temperature: float = 0.0, max_tokens: int | None = None) -> str:
        body = {"model": self.config.model, "messages": messages, "temperature": temperature,
                "max_tokens": max_tokens or self.config.max_tokens}
        last = "no attempt"
        for attempt in range(self.config.retries + 1):
            try:
                response = await self._client.post("chat/completions", json=body)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"[:300]
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                elif response.status_code >= 400:
                    raise LLMError(f"HTTP {response.status_code} from {self.config.url}: {response.text[:200]}")
                else:
                    return _reply_text(response)
            if attempt < self.config.retries:
                await asyncio.sleep(0.2 * (attempt + 1))
        raise LLMError(f"{self.config.url} failed after {self.config.retries + 1} tries: {last}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _reply_text(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError(f"reply is not an OpenAI chat completion: {response.text[:200]!r}") from None
    if not isinstance(content, str):
        raise LLMError(f"reply content is {type(content).__name__}, not text")
    return content
