"""``normalize`` and the dialects, one quirk at a time, on small hand-made chunks."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from openai.types.completion_usage import CompletionUsage
from reactivex import Observable

import deltaflow
from deltaflow import dialects
from deltaflow import operators as ops
from deltaflow._openai_compat import construct
from deltaflow.dialects import DIALECTS, Dialect, detect_dialect, get_dialect, known_dialects
from deltaflow.errors import ProviderError, StreamContractError
from deltaflow.events import BaseEvent
from deltaflow.pipeline import chunk_from_dict
from deltaflow.state import RejectedChunk
from tests.strategies import GeneratedStream, chat_streams

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


def payload(*choices: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A chunk's JSON; each choice gets index 0 unless it says otherwise."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [{"index": 0, **choice} for choice in choices],
        **fields,
    }


def chunk(*choices: dict[str, Any], **fields: Any) -> ChatCompletionChunk:
    """A chunk built as the pipeline builds one from a provider's JSON."""
    return chunk_from_dict(payload(*choices, **fields))


def start(**delta: Any) -> ChatCompletionChunk:
    """OpenAI's first chunk: the role, and whatever else ``delta`` holds."""
    return chunk({"delta": {"role": "assistant", **delta}, "finish_reason": None})


def finish(reason: str = "stop", **fields: Any) -> ChatCompletionChunk:
    """A chunk finishing choice 0 with an empty delta."""
    return chunk({"delta": {}, "finish_reason": reason}, **fields)


def normalized(chunks: list[Any], dialect: str | Dialect = "generic") -> list[Any]:
    """What ``normalize(dialect)`` passes on; an error ends the list."""
    out: list[Any] = []
    deltaflow.from_chunks(chunks).pipe(ops.normalize(dialect)).subscribe(out.append, out.append)
    return out


def run(
    chunks: Any, dialect: str | Dialect = "generic", **options: Any
) -> tuple[list[BaseEvent], Exception | None]:
    """Events of ``normalize(dialect)`` + ``to_events(**options)``, and the error ending them."""
    source = chunks if isinstance(chunks, Observable) else deltaflow.from_chunks(chunks)
    events: list[BaseEvent] = []
    errors: list[Exception] = []
    source.pipe(ops.normalize(dialect), ops.to_events(**options)).subscribe(events.append, errors.append)
    return events, errors[0] if errors else None


def final(chunks: Any, dialect: str | Dialect = "generic") -> Any:
    """The final completion (failing the test if the stream failed)."""
    events, error = run(chunks, dialect)
    assert error is None, error
    return next(event for event in events if event.type == "completion.done").completion  # type: ignore[attr-defined]


def of_type(events: list[BaseEvent], kind: str) -> list[Any]:
    """The events of one type."""
    return [event for event in events if event.type == kind]


def calls(completion: Any) -> list[tuple[int, str | None, str, Any]]:
    """A completion's tool calls as (index, id, name, parsed arguments)."""
    return [
        (call.index, call.id, call.function.name, json.loads(call.function.arguments))
        for call in completion.choices[0].message.tool_calls or []
    ]


class TestRegistry:
    """Names, aliases and base URLs."""

    def test_known_dialects_are_the_fifteen_families(self) -> None:
        """Every provider family named in the issue has a dialect, listed sorted."""
        assert known_dialects() == [
            "azure",
            "deepseek",
            "gemini",
            "generic",
            "groq",
            "mistral",
            "moonshot",
            "ollama",
            "openai",
            "openrouter",
            "perplexity",
            "qwen",
            "vllm",
            "xai",
            "zhipu",
        ]
        assert sorted(DIALECTS) == known_dialects()
        assert all(DIALECTS[name].name == name for name in DIALECTS)

    @pytest.mark.parametrize(
        ("alias", "name"),
        [
            ("glm", "zhipu"),
            ("dashscope", "qwen"),
            ("grok", "xai"),
            ("kimi", "moonshot"),
            ("lmstudio", "generic"),
            ("llamacpp", "generic"),
            (" DeepSeek ", "deepseek"),
        ],
    )
    def test_aliases_and_case_resolve(self, alias: str, name: str) -> None:
        """Aliases and other spellings give the canonical dialect."""
        assert get_dialect(alias) is DIALECTS[name]

    def test_unknown_name_lists_the_known_ones(self) -> None:
        """An unknown name is a ValueError naming every known dialect."""
        with pytest.raises(ValueError, match="unknown dialect 'anthropicc'") as raised:
            get_dialect("anthropicc")
        assert all(name in str(raised.value) for name in known_dialects())

    def test_normalize_rejects_an_unknown_dialect_at_once(self) -> None:
        """``normalize`` fails when built, not when the stream runs."""
        with pytest.raises(ValueError, match="known dialects"):
            ops.normalize("nope")

    def test_a_dialect_object_is_taken_as_is(self) -> None:
        """``get_dialect`` returns a ``Dialect`` unchanged, so ``normalize`` takes custom ones."""
        custom = Dialect(name="mine")
        assert get_dialect(custom) is custom
        assert normalized([start(content="a")], custom)[0].choices[0].delta.content == "a"

    @pytest.mark.parametrize(
        ("url", "name"),
        [
            ("https://api.openai.com/v1", "openai"),
            ("https://my-resource.openai.azure.com/openai/deployments/x", "azure"),
            ("https://api.deepseek.com", "deepseek"),
            ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "qwen"),
            ("https://open.bigmodel.cn/api/paas/v4/", "zhipu"),
            ("https://api.z.ai/api/paas/v4", "zhipu"),
            ("https://generativelanguage.googleapis.com/v1beta/openai/", "gemini"),
            ("https://api.mistral.ai/v1", "mistral"),
            ("https://api.groq.com/openai/v1", "groq"),
            ("https://api.x.ai/v1", "xai"),
            ("https://openrouter.ai/api/v1", "openrouter"),
            ("http://localhost:11434/v1", "ollama"),
            ("https://api.perplexity.ai", "perplexity"),
            ("https://api.moonshot.ai/v1", "moonshot"),
            ("http://localhost:8000/v1", "generic"),
            ("https://llm.example.com/v1", "generic"),
            ("api.groq.com/openai/v1", "groq"),
            ("https://api.openai.com.evil.example/v1", "generic"),
            ("", "generic"),
            (None, "generic"),
        ],
    )
    def test_detect_dialect_from_base_url(self, url: str | None, name: str) -> None:
        """A provider's host picks its dialect; anything else is ``generic``."""
        assert detect_dialect(url).name == name

    def test_include_usage_is_known_per_provider(self) -> None:
        """Providers that reject ``stream_options`` say so; OpenAI and DeepSeek accept it."""
        assert get_dialect("openai").include_usage
        assert get_dialect("deepseek").include_usage
        assert not get_dialect("mistral").include_usage
        assert not get_dialect("zhipu").include_usage
        assert not get_dialect("generic").include_usage

    def test_every_dialect_lists_its_steps_in_the_generic_order(self) -> None:
        """Provider dialects compose a subsequence of ``generic``'s steps, so their order agrees."""
        order = [step.__name__ for step in get_dialect("generic").steps]
        for dialect in DIALECTS.values():
            positions = [order.index(step.__name__) for step in dialect.steps]
            assert positions == sorted(positions), dialect.name
            assert dialect.quirks or dialect.name == "openai"

    def test_public_names_are_sorted(self) -> None:
        """The package's ``__all__`` is curated and sorted, and ``normalize`` is an operator."""
        assert dialects.__all__ == sorted(dialects.__all__)
        assert "normalize" in ops.__all__
        assert ops.__all__ == sorted(ops.__all__)


class TestPassThrough:
    """OpenAI-conformant chunks are not touched."""

    def test_conformant_chunks_pass_as_the_same_objects(self) -> None:
        """Text, tool calls and the usage chunk of an OpenAI stream go on as the very same objects."""
        chunks = [
            start(content="", refusal=None),
            chunk({"delta": {"content": "Hi"}, "finish_reason": None}),
            chunk(
                {
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_a",
                                "type": "function",
                                "function": {"name": "f", "arguments": ""},
                            }
                        ]
                    }
                }
            ),
            chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}),
            finish("tool_calls"),
            chunk_from_dict(payload(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})),
        ]
        for dialect in known_dialects():
            out = normalized(chunks, dialect)
            assert len(out) == len(chunks), dialect
            assert all(mine is theirs for mine, theirs in zip(out, chunks, strict=True)), dialect

    @settings(max_examples=150, deadline=None)
    @given(chat_streams())
    def test_generated_conformant_streams_pass_untouched(self, stream: GeneratedStream) -> None:
        """On any generated OpenAI-conformant stream, ``generic`` passes every chunk as the same object."""
        chunks = stream.chunks()
        out = normalized(chunks, "generic")
        assert len(out) == len(chunks)
        assert all(mine is theirs for mine, theirs in zip(out, chunks, strict=True))

    def test_openai_dialect_fixes_nothing(self) -> None:
        """``openai`` leaves even a quirky chunk alone: the repeated role stays."""
        repeated = chunk({"delta": {"role": "assistant", "content": "b"}})
        out = normalized([start(content="a"), repeated], "openai")
        assert out[1] is repeated


class TestReasoning:
    """Reasoning text ends up in ``reasoning_content``, whatever the provider calls it."""

    def test_reasoning_field_moves_to_reasoning_content(self) -> None:
        """Groq / OpenRouter ``delta.reasoning`` becomes reasoning events and ``reasoning_content``."""
        events, _ = run(
            [
                start(content=""),
                chunk({"delta": {"reasoning": "Let me "}}),
                chunk({"delta": {"reasoning": "think."}}),
                chunk({"delta": {"content": "4"}}),
                finish(),
            ]
        )
        assert [event.delta for event in of_type(events, "reasoning.delta")] == ["Let me ", "think."]  # type: ignore[attr-defined]
        assert of_type(events, "reasoning.done")[0].reasoning == "Let me think."
        message = of_type(events, "completion.done")[0].completion.choices[0].message
        assert message.reasoning_content == "Let me think."
        assert "reasoning" not in message.model_dump()

    def test_same_text_under_both_spellings_counts_once(self) -> None:
        """vLLM's transitional deltas carry the same text as ``reasoning`` and ``reasoning_content``."""
        completion = final(
            [start(reasoning="a", reasoning_content="a"), chunk({"delta": {"reasoning": None}})]
        )
        assert completion.choices[0].message.reasoning_content == "a"

    def test_groq_channel_labels_are_dropped(self) -> None:
        """gpt-oss on Groq labels deltas ``channel: "analysis"``; the message does not concatenate them."""
        completion = final(
            [
                start(content=""),
                chunk({"delta": {"reasoning": "x", "channel": "analysis"}}),
                chunk({"delta": {"reasoning": "y", "channel": "analysis"}}),
            ]
        )
        message = completion.choices[0].message.model_dump()
        assert message["reasoning_content"] == "xy"
        assert "channel" not in message

    def test_mistral_content_parts_split_into_reasoning_and_content(self) -> None:
        """Magistral's list-typed content: thinking parts are reasoning, text parts are content."""
        thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}
        completion = final(
            [
                start(content=[thinking]),
                chunk({"delta": {"content": [thinking, {"type": "text", "text": "4"}]}}),
                chunk({"delta": {"content": "!"}, "finish_reason": "stop"}),
            ],
            "mistral",
        )
        message = completion.choices[0].message
        assert (message.reasoning_content, message.content) == ("hmmhmm", "4!")

    def test_openrouter_reasoning_details_are_merged_and_kept_whole(self) -> None:
        """Details stream in fragments (text, then a signature); the message gets them merged, once."""
        detail = {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0}
        completion = final(
            [
                start(content="", reasoning=None, reasoning_details=[]),
                chunk({"delta": {"reasoning": "Two ", "reasoning_details": [{**detail, "text": "Two "}]}}),
                chunk(
                    {
                        "delta": {
                            "reasoning": "plus two.",
                            "reasoning_details": [{**detail, "text": "plus two."}],
                        }
                    }
                ),
                chunk({"delta": {"reasoning": None, "reasoning_details": [{**detail, "signature": "sig"}]}}),
                chunk({"delta": {"content": "4", "reasoning_details": []}}),
                finish(),
            ],
            "openrouter",
        )
        message = completion.choices[0].message
        assert message.reasoning_content == "Two plus two."
        assert message.reasoning_details == [{**detail, "text": "Two plus two.", "signature": "sig"}]  # type: ignore[attr-defined]

    def test_reasoning_details_without_reasoning_text_give_the_text(self) -> None:
        """When a delta carries only ``reasoning_details``, their text is the reasoning text."""
        detail = {"type": "reasoning.text", "text": "because", "index": 0}
        completion = final(
            [start(content=""), chunk({"delta": {"reasoning_details": [detail]}})], "openrouter"
        )
        assert completion.choices[0].message.reasoning_content == "because"
        assert completion.choices[0].message.reasoning_details == [detail]  # type: ignore[attr-defined]


class TestToolCalls:
    """Tool-call fragments get OpenAI's dense index, id and name once."""

    @staticmethod
    def whole(call_id: str | None, name: str, arguments: str, **extra: Any) -> dict[str, Any]:
        """A whole tool call, as Gemini or Mistral send it (no index)."""
        call: dict[str, Any] = {"function": {"name": name, "arguments": arguments}, **extra}
        if call_id is not None:
            call["id"] = call_id
        return call

    def test_missing_indexes_are_assigned_in_order(self) -> None:
        """Gemini's parallel calls without ``index`` become calls 0 and 1, each with a done event."""
        events, error = run(
            [
                start(content=None),
                chunk({"delta": {"tool_calls": [self.whole("c1", "a", '{"x": 1}')]}}),
                chunk({"delta": {"tool_calls": [self.whole("c2", "b", '{"y": 2}')]}}),
                finish("tool_calls"),
            ],
            "gemini",
        )
        assert error is None
        assert [
            (event.index, event.name) for event in of_type(events, "tool_calls.function.arguments.done")
        ] == [  # type: ignore[attr-defined]
            (0, "a"),
            (1, "b"),
        ]
        assert calls(of_type(events, "completion.done")[0].completion) == [
            (0, "c1", "a", {"x": 1}),
            (1, "c2", "b", {"y": 2}),
        ]

    def test_index_less_continuations_belong_to_the_open_call(self) -> None:
        """Arguments split over index-less deltas (Gemini) join the call that is open."""
        completion = final(
            [
                start(content=None),
                chunk({"delta": {"tool_calls": [self.whole("c1", "f", '{"q": ')]}}),
                chunk({"delta": {"tool_calls": [{"function": {"arguments": '"x"}'}}]}}),
                finish("tool_calls"),
            ],
            "gemini",
        )
        assert calls(completion) == [(0, "c1", "f", {"q": "x"})]

    def test_sparse_indexes_become_dense(self) -> None:
        """A gateway's indexes 1 and 3 become 0 and 1, continuations following them."""
        first = {"type": "function", "function": {"arguments": ""}}
        completion = final(
            [
                start(content="Reading."),
                chunk(
                    {
                        "delta": {
                            "tool_calls": [
                                {**first, "index": 1, "id": "t1", "function": {"name": "r", "arguments": ""}}
                            ]
                        }
                    }
                ),
                chunk({"delta": {"tool_calls": [{"index": 1, "function": {"arguments": '{"p": 1}'}}]}}),
                chunk(
                    {
                        "delta": {
                            "tool_calls": [
                                {**first, "index": 3, "id": "t2", "function": {"name": "w", "arguments": ""}}
                            ]
                        }
                    }
                ),
                chunk({"delta": {"tool_calls": [{"index": 3, "function": {"arguments": '{"p": 2}'}}]}}),
                finish("tool_calls"),
            ]
        )
        assert calls(completion) == [(0, "t1", "r", {"p": 1}), (1, "t2", "w", {"p": 2})]

    def test_a_reused_index_with_a_new_id_is_a_new_call(self) -> None:
        """A relay that reuses index 0 for a second call does not glue the two arguments together."""
        header = {"index": 0, "type": "function"}
        completion = final(
            [
                start(content=None),
                chunk(
                    {
                        "delta": {
                            "tool_calls": [
                                {**header, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
                            ]
                        }
                    }
                ),
                chunk(
                    {
                        "delta": {
                            "tool_calls": [
                                {**header, "id": "c2", "function": {"name": "f", "arguments": "{}"}}
                            ]
                        }
                    }
                ),
                finish("tool_calls"),
            ]
        )
        assert calls(completion) == [(0, "c1", "f", {}), (1, "c2", "f", {})]

    def test_xai_parallel_calls_all_at_index_0_stay_apart(self) -> None:
        """grok-3 sends each of its parallel calls whole at ``index: 0``: the xai dialect numbers them."""
        whole = [
            chunk(
                {
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "type": "function",
                                "id": f"call_{city}",
                                "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                            }
                        ]
                    }
                }
            )
            for city in ("London", "Paris")
        ]
        completion = final(
            [start(content=None), whole[0], chunk({"delta": {"content": "\n"}}), whole[1]], "xai"
        )
        assert calls(completion) == [
            (0, "call_London", "get_weather", {"city": "London"}),
            (1, "call_Paris", "get_weather", {"city": "Paris"}),
        ]

    def test_empty_ids_and_names_on_continuations_are_dropped(self) -> None:
        """Qwen's ``"id": ""`` and LM Studio's ``"name": ""`` on every fragment keep one call intact."""
        completion = final(
            [
                start(content=None),
                chunk(
                    {
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "weather", "arguments": ""},
                                }
                            ]
                        }
                    }
                ),
                chunk(
                    {
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "",
                                    "type": "function",
                                    "function": {"arguments": '{"city": '},
                                }
                            ]
                        }
                    }
                ),
                chunk(
                    {
                        "delta": {
                            "tool_calls": [{"index": 0, "function": {"name": "", "arguments": '"Oslo"}'}}]
                        }
                    }
                ),
                finish("tool_calls"),
            ],
            "qwen",
        )
        assert calls(completion) == [(0, "c1", "weather", {"city": "Oslo"})]

    def test_the_same_id_and_name_on_every_fragment_count_once(self) -> None:
        """A gateway repeating id and name on each fragment does not make ``c1c1`` or ``ff``."""
        fragment = {"index": 0, "id": "c1", "type": "function"}
        completion = final(
            [
                start(content=None),
                chunk(
                    {"delta": {"tool_calls": [{**fragment, "function": {"name": "f", "arguments": '{"a"'}}]}}
                ),
                chunk(
                    {"delta": {"tool_calls": [{**fragment, "function": {"name": "f", "arguments": ": 1}"}}]}}
                ),
                finish("tool_calls"),
            ]
        )
        assert calls(completion) == [(0, "c1", "f", {"a": 1})]

    def test_a_call_arriving_with_the_finish_gets_its_done_event(self) -> None:
        """Mistral's whole call + ``finish_reason`` + usage in one chunk: done, then choice.done, then usage."""
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        events, error = run(
            [
                start(content=""),
                chunk(
                    {
                        "delta": {
                            "content": None,
                            "tool_calls": [self.whole("g1", "weather", '{"c": "SF"}')],
                        },
                        "finish_reason": "tool_calls",
                    },
                    usage=usage,
                ),
            ],
            "mistral",
        )
        assert error is None
        kinds = [event.type for event in events]
        done = kinds.index("tool_calls.function.arguments.done")
        assert done < kinds.index("choice.done") < kinds.index("usage")
        completion = of_type(events, "completion.done")[0].completion
        assert calls(completion) == [(0, "g1", "weather", {"c": "SF"})]
        assert completion.choices[0].message.tool_calls[0].type == "function"
        assert completion.choices[0].finish_reason == "tool_calls"
        assert completion.usage.total_tokens == 8

    def test_arguments_sent_as_an_object_become_json_text(self) -> None:
        """Arguments as a JSON object (Ollama's native shape) are serialised, not rejected."""
        completion = final(
            [start(content=None), chunk({"delta": {"tool_calls": [self.whole("o1", "f", {"n": 1})]}})],
            "ollama",
        )
        assert calls(completion) == [(0, "o1", "f", {"n": 1})]

    def test_a_fragment_that_continues_no_call_is_rejected_and_the_stream_goes_on(self) -> None:
        """A nameless fragment with no call open is an error event; later chunks still count."""
        orphan = chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}})
        events, error = run([start(content="a"), orphan, chunk({"delta": {"content": "b"}}), finish()])
        assert error is None
        [rejected] = of_type(events, "error")
        assert rejected.code == "chunk_unrecognized"  # type: ignore[attr-defined]
        assert "no function name" in rejected.message  # type: ignore[attr-defined]
        assert rejected.detail["choices"][0]["delta"]["tool_calls"][0]["function"] == {"arguments": "{}"}  # type: ignore[attr-defined]
        assert of_type(events, "completion.done")[0].completion.choices[0].message.content == "ab"

    def test_state_is_per_subscription(self) -> None:
        """Subscribing twice gives the same indexes: nothing is remembered between streams."""
        chunks = [
            start(content=None),
            chunk({"delta": {"tool_calls": [self.whole("c1", "f", "{}")]}}),
            finish("tool_calls"),
        ]
        pipeline = deltaflow.from_chunks(chunks).pipe(ops.normalize("gemini"))
        runs: list[list[Any]] = [[], []]
        pipeline.subscribe(runs[0].append)
        pipeline.subscribe(runs[1].append)
        indexes = [
            [
                c.choices[0].delta.tool_calls[0].index
                for c in run
                if c.choices and c.choices[0].delta.tool_calls
            ]
            for run in runs
        ]
        assert indexes == [[0], [0]]


class TestChoices:
    """Roles, deltas, finish reasons."""

    def test_role_is_sent_once_per_choice(self) -> None:
        """A role repeated on every delta (OpenRouter, GLM, Perplexity) does not become ``assistantassistant``."""
        out = normalized(
            [start(content="a"), chunk({"delta": {"role": "assistant", "content": "b"}})], "zhipu"
        )
        assert out[1].choices[0].delta.role is None
        assert (
            final([start(content="a"), chunk({"delta": {"role": "assistant", "content": "b"}})])
            .choices[0]
            .message.role
            == "assistant"
        )

    def test_a_missing_role_is_added_on_the_first_delta(self) -> None:
        """A choice that never sends a role (GLM on Mistral) still starts with ``role: "assistant"``."""
        out = normalized([chunk({"delta": {"content": "a"}}), chunk({"delta": {"content": "b"}})], "mistral")
        assert [c.choices[0].delta.role for c in out] == ["assistant", None]

    def test_stray_delta_index_is_dropped(self) -> None:
        """Mistral's ``delta.index`` does not become ``message.index``."""
        message = (
            final([start(content="", index=0), chunk({"delta": {"content": "a", "index": 0}})], "mistral")
            .choices[0]
            .message
        )
        assert "index" not in message.model_dump()

    def test_absent_finish_reason_and_two_finish_chunks(self) -> None:
        """``finish_reason`` keys left out (xAI, Z.ai) and two finish chunks (OpenRouter): one choice.done."""
        plain = [
            chunk_from_dict(
                {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "a"}}],
                }
            ),
            finish("length"),
            finish("length"),
        ]
        events, error = run(plain)
        assert error is None
        assert [event.finish_reason for event in of_type(events, "choice.done")] == ["length"]  # type: ignore[attr-defined]

    def test_an_empty_refusal_beside_content_is_no_refusal(self) -> None:
        """Snowflake's ``refusal: ""`` on every content delta makes no refusal event and no ``refusal: ""``."""
        chunks = [
            start(content="Hel", refusal=""),
            chunk({"delta": {"content": "lo", "refusal": ""}}),
            finish(),
        ]
        events, error = run(chunks)
        assert error is None
        assert [event.type for event in events if event.type.startswith("refusal")] == []
        message = events[-1].completion.choices[0].message  # type: ignore[attr-defined]
        assert (message.content, message.refusal) == ("Hello", None)
        # the `openai` dialect reads the wire as openai's helper does
        assert final(chunks, "openai").choices[0].message.refusal == ""

    def test_openais_refusal_opening_stays(self) -> None:
        """OpenAI opens a refusal with ``refusal: ""`` and ``content: null``: kept, as openai's helper reads it."""
        chunks = [start(content=None, refusal=""), chunk({"delta": {"refusal": "No."}}), finish()]
        assert all(mine is theirs for mine, theirs in zip(normalized(chunks), chunks, strict=True))
        events, _ = run(chunks)
        assert [event.delta for event in of_type(events, "refusal.delta")] == ["", "No."]  # type: ignore[attr-defined]

    @pytest.mark.parametrize("dialect", ["generic", "openai"])
    def test_a_fractional_created_is_read_without_a_warning(self, dialect: str) -> None:
        """SambaNova's ``created: 1759360491.27``: no pydantic warning; ``generic`` makes it whole seconds."""
        chunks = [
            chunk_from_dict(
                payload({"delta": {"role": "assistant", "content": "a"}}, created=1759360491.2774205)
            ),
            chunk_from_dict(payload({"delta": {}, "finish_reason": "stop"}, created=1759360491.5)),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            completion = final(chunks, dialect)
        assert completion.choices[0].message.content == "a"
        assert completion.created == (1759360491 if dialect == "generic" else 1759360491.2774205)

    def test_azure_async_filter_chunk_without_delta(self) -> None:
        """Azure's content-filter chunk after the finish (no ``delta``) is read, not a crash."""
        results = {"hate": {"filtered": False, "severity": "safe"}}
        late = chunk(
            {
                "content_filter_offsets": {"check_offset": 0},
                "content_filter_results": results,
                "finish_reason": None,
            }
        )
        events, error = run([start(content="Hi"), finish(), late], "azure")
        assert error is None
        assert [event.type for event in events][-1] == "completion.done"
        assert of_type(events, "completion.done")[0].completion.choices[0].message.content == "Hi"

    def test_azure_prompt_filter_chunk_is_folded_into_the_next(self) -> None:
        """The empty-id first chunk does not blank the completion's id; its filter results are kept."""
        results = [{"prompt_index": 0, "content_filter_results": {}}]
        head = chunk_from_dict(
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": results,
            }
        )
        completion = final([head, start(content="Hi"), finish()], "azure")
        assert (completion.id, completion.model, completion.created) == ("chatcmpl-1", "m", 7)
        assert completion.prompt_filter_results == results  # type: ignore[attr-defined]

    def test_azure_prompt_filter_chunk_alone_is_released_at_the_end(self) -> None:
        """If nothing follows the prompt-filter chunk, it still reaches the stream."""
        head = chunk_from_dict(
            {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": []}
        )
        out = normalized([head], "azure")
        assert len(out) == 1
        assert out[0].prompt_filter_results == []


class TestUsage:
    """Usage once per stream, as an openai ``CompletionUsage``."""

    @staticmethod
    def usage(completion_tokens: int) -> dict[str, int]:
        """Usage with 11 prompt tokens."""
        return {
            "prompt_tokens": 11,
            "completion_tokens": completion_tokens,
            "total_tokens": 11 + completion_tokens,
        }

    def test_cumulative_usage_is_reported_once_with_the_latest_figures(self) -> None:
        """Perplexity's usage on every chunk: one usage event, the last figures, nothing summed."""
        chunks = [
            chunk({"delta": {"role": "assistant", "content": "a"}}, usage=self.usage(1)),
            chunk({"delta": {"role": "assistant", "content": "b"}}, usage=self.usage(2)),
            chunk({"delta": {"role": "assistant", "content": "c"}}, usage=self.usage(3)),
        ]
        events, error = run(chunks, "perplexity")
        assert error is None
        [reported] = of_type(events, "usage")
        assert reported.usage.completion_tokens == 3  # type: ignore[attr-defined]
        assert of_type(events, "completion.done")[0].completion.usage.total_tokens == 14

    def test_cumulative_usage_then_the_same_on_the_finish_chunk(self) -> None:
        """Usage held back, then repeated with the finish: still one usage event."""
        chunks = [
            chunk({"delta": {"role": "assistant", "content": "a"}}, usage=self.usage(1)),
            chunk({"delta": {"content": "b"}, "finish_reason": "stop"}, usage=self.usage(2)),
        ]
        events, _ = run(chunks, "perplexity")
        assert [event.usage.completion_tokens for event in of_type(events, "usage")] == [2]  # type: ignore[attr-defined]

    def test_usage_inside_the_choice_moves_to_the_top(self) -> None:
        """Moonshot's ``choices[0].usage`` becomes the completion's usage, extras kept."""
        completion = final(
            [
                start(content="hi"),
                chunk({"delta": {}, "finish_reason": "stop", "usage": {**self.usage(2), "cached_tokens": 4}}),
            ],
            "moonshot",
        )
        assert isinstance(completion.usage, CompletionUsage)
        assert (completion.usage.completion_tokens, completion.usage.cached_tokens) == (2, 4)  # type: ignore[attr-defined]

    def test_x_groq_usage_is_used_when_top_level_usage_is_missing(self) -> None:
        """Groq's ``x_groq.usage`` (with timings) is the usage when no top-level usage came."""
        completion = final(
            [
                start(content="hi"),
                finish(x_groq={"id": "req_1", "usage": {**self.usage(1), "queue_time": 0.5}}),
            ],
            "groq",
        )
        assert completion.usage.total_tokens == 12
        assert completion.usage.queue_time == 0.5  # type: ignore[attr-defined]


class TestErrors:
    """Mid-stream provider errors and payloads nobody understands."""

    error_payload = payload(
        {"delta": {"role": "assistant", "content": ""}, "finish_reason": None},
        error={"code": 400, "message": "Token limit reached"},
        usage={"prompt_tokens": 43, "completion_tokens": 10, "total_tokens": 53},
    )

    def test_error_chunk_object_ends_the_stream_with_its_usage_kept(self) -> None:
        """OpenRouter's error chunk fed as an object: usage in the partial completion, then ProviderError."""
        error_chunk = construct(ChatCompletionChunk, self.error_payload)
        events, error = run(
            [start(content="Hel"), error_chunk, chunk({"delta": {"content": "never"}})], "openrouter"
        )
        assert isinstance(error, ProviderError)
        assert str(error) == "Token limit reached"
        assert error.error["error"] == {"code": 400, "message": "Token limit reached"}  # type: ignore[index]
        assert error.error["usage"]["total_tokens"] == 53  # type: ignore[index]
        assert error.completion is not None
        assert error.completion.usage.total_tokens == 53
        assert error.completion.choices[0].message.content == "Hel"
        assert [event.type for event in events][-2:] == ["usage", "error"]
        assert events[-1].exception is error  # type: ignore[attr-defined]

    def test_error_payload_from_the_sse_decoder_keeps_its_usage(self) -> None:
        """The SSE decoder raises ProviderError on the error payload; normalize still passes its usage on."""
        body = "".join(
            f"data: {json.dumps(item)}\n\n"
            for item in (payload({"delta": {"role": "assistant", "content": "Hel"}}), self.error_payload)
        )
        events, error = run(deltaflow.from_sse(body + "data: [DONE]\n\n"), "openrouter")
        assert isinstance(error, ProviderError)
        assert error.completion is not None
        assert error.completion.usage.total_tokens == 53
        assert of_type(events, "error")[0].exception is error  # type: ignore[attr-defined]

    def test_error_chunk_carrying_content_keeps_it(self) -> None:
        """Content that travels with the error is in the partial completion too."""
        with_content = {**self.error_payload, "choices": [{"index": 0, "delta": {"content": "lo"}}]}
        _, error = run([start(content="Hel"), construct(ChatCompletionChunk, with_content)])
        assert isinstance(error, ProviderError)
        assert error.completion.choices[0].message.content == "Hello"  # type: ignore[union-attr]

    def test_held_usage_is_released_before_an_upstream_error(self) -> None:
        """A source failing after cumulative usage: the usage reaches the partial completion."""

        def chunks() -> Any:
            yield chunk({"delta": {"role": "assistant", "content": "a"}}, usage=TestUsage.usage(1))
            raise ConnectionError("reset")

        events, error = run(chunks(), "perplexity")
        assert isinstance(error, ConnectionError)
        assert [event.type for event in events][-2:] == ["usage", "error"]
        assert events[-2].usage.completion_tokens == 1  # type: ignore[attr-defined]

    def test_unknown_payloads_become_error_events_and_the_stream_goes_on(self) -> None:
        """A content part of unknown type and a non-chunk object are reported with the raw payload."""
        odd = chunk({"delta": {"content": [{"type": "image", "url": "x"}]}})
        events, error = run(
            [start(content="a"), odd, "not a chunk", chunk({"delta": {"content": "b"}}), finish()], "mistral"
        )
        assert error is None
        rejected = of_type(events, "error")
        assert [event.code for event in rejected] == ["chunk_unrecognized", "chunk_unrecognized"]  # type: ignore[attr-defined]
        assert "unknown type 'image'" in rejected[0].message  # type: ignore[attr-defined]
        assert rejected[0].detail["choices"][0]["delta"]["content"] == [{"type": "image", "url": "x"}]  # type: ignore[attr-defined]
        assert rejected[1].detail == "not a chunk"  # type: ignore[attr-defined]
        assert of_type(events, "completion.done")[0].completion.choices[0].message.content == "ab"

    def test_rejected_chunks_are_rejected_chunk_objects(self) -> None:
        """What ``normalize`` emits for an unreadable payload is a ``RejectedChunk``."""
        [_, rejected] = normalized([start(content="a"), {"no": "choices"}])
        assert isinstance(rejected, RejectedChunk)
        assert rejected.raw == {"no": "choices"}

    def test_a_dict_chunk_is_read_like_a_chunk(self) -> None:
        """Chunks given as decoded JSON objects are normalised as well."""
        completion = final(
            [
                payload({"delta": {"role": "assistant", "reasoning": "r"}}),
                payload({"delta": {"content": "c"}, "finish_reason": "stop"}),
            ]
        )
        assert (completion.choices[0].message.reasoning_content, completion.choices[0].message.content) == (
            "r",
            "c",
        )

    def test_without_normalize_the_quirk_breaks_the_stream(self) -> None:
        """The fixes matter: a Mistral tool call without index stops ``to_events`` alone."""
        chunks = [
            start(content=""),
            chunk(
                {
                    "delta": {"tool_calls": [TestToolCalls.whole("g1", "f", "{}")]},
                    "finish_reason": "tool_calls",
                }
            ),
        ]
        errors: list[Exception] = []
        deltaflow.from_chunks(chunks).pipe(ops.to_events()).subscribe(lambda _: None, errors.append)
        assert isinstance(errors[0], StreamContractError)
        assert calls(final(chunks, "mistral")) == [(0, "g1", "f", {})]


def openai_helper(chunks: list[ChatCompletionChunk]) -> Any:
    """openai's ChatCompletionStreamState over the chunks: its final completion."""
    state = ChatCompletionStreamState()
    for item in chunks:
        state.handle_chunk(item)
    return state.get_final_completion()


class TestAgainstOpenAIHelper:
    """Quirks without a recording: what openai's helper makes of them, and what we make of them."""

    def test_index_less_parallel_calls(self) -> None:
        """Gemini / old Ollama calls without ``index``: openai's helper crashes, we get two calls."""
        chunks = [
            start(content=None),
            chunk({"delta": {"tool_calls": [TestToolCalls.whole("c1", "a", "{}")]}}),
            chunk({"delta": {"tool_calls": [TestToolCalls.whole("c2", "b", "{}")]}}),
            finish("tool_calls"),
        ]
        with pytest.raises(TypeError):
            openai_helper(chunks)
        assert calls(final(chunks, "gemini")) == [(0, "c1", "a", {}), (1, "c2", "b", {})]

    def test_reused_index_glues_arguments(self) -> None:
        """A relay reusing index 0: openai's helper glues ``{}{}`` into one call, we keep two."""
        header = {"index": 0, "type": "function"}
        chunks = [
            start(content=None),
            chunk(
                {
                    "delta": {
                        "tool_calls": [{**header, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]
                    }
                }
            ),
            chunk(
                {
                    "delta": {
                        "tool_calls": [{**header, "id": "c2", "function": {"name": "f", "arguments": "{}"}}]
                    }
                }
            ),
            finish("tool_calls"),
        ]
        [glued] = openai_helper(chunks).choices[0].message.tool_calls
        assert (glued.id, glued.function.name, glued.function.arguments) == ("c1c2", "ff", "{}{}")
        assert calls(final(chunks)) == [(0, "c1", "f", {}), (1, "c2", "f", {})]

    def test_usage_inside_the_choice(self) -> None:
        """Moonshot's ``choices[0].usage``: openai's helper has no usage, we have it."""
        usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        chunks = [start(content="hi"), chunk({"delta": {}, "finish_reason": "stop", "usage": usage})]
        assert openai_helper(chunks).usage is None
        assert final(chunks, "moonshot").usage.total_tokens == 3

    def test_usage_only_under_x_groq(self) -> None:
        """Older Groq: usage only in ``x_groq.usage``; openai's helper has none, we have it."""
        usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        chunks = [start(content="hi"), finish(x_groq={"id": "req", "usage": usage})]
        assert openai_helper(chunks).usage is None
        assert final(chunks, "groq").usage.total_tokens == 3

    def test_empty_name_on_continuations(self) -> None:
        """LM Studio's ``name: ""`` on continuations: both keep one call named as its first fragment."""
        chunks = [
            start(content=None),
            chunk(
                {
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": ""},
                            }
                        ]
                    }
                }
            ),
            chunk({"delta": {"tool_calls": [{"index": 0, "function": {"name": "", "arguments": "{}"}}]}}),
            finish("tool_calls"),
        ]
        assert openai_helper(chunks).choices[0].message.tool_calls[0].function.name == "f"
        assert calls(final(chunks, "lmstudio")) == [(0, "c1", "f", {})]

    def test_reasoning_under_both_names(self) -> None:
        """vLLM's deltas with ``reasoning`` and ``reasoning_content``: one reasoning text for us."""
        chunks = [
            start(content="", reasoning="a", reasoning_content="a"),
            chunk({"delta": {"reasoning": "b", "reasoning_content": "b"}}),
        ]
        message = openai_helper(chunks).choices[0].message
        assert (message.reasoning, message.reasoning_content) == ("ab", "ab")  # type: ignore[attr-defined]
        ours = final(chunks, "vllm").choices[0].message.model_dump()
        assert ours["reasoning_content"] == "ab"
        assert "reasoning" not in ours
