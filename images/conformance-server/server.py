"""A stdio MCP server that offers what the MCP conformance suite's server scenarios ask for.

`conformance server --url URL` (npm @modelcontextprotocol/conformance) connects to a server
over Streamable HTTP and expects tools, resources, prompts and utilities with fixed names and
answers; each scenario documents its own ("Server Implementation Requirements" in
`conformance list --server` and its dist/). This server offers all of them over stdio, so that
the bridge in front of it is what the suite tests: `docker run -i` on this image, served at
/mcp/{id}/mcp, is a conforming MCP server exactly when the bridge passes everything through.

Written with the low-level server of the official Python SDK (mcp 1.x, a handshake-era
server: it answers `initialize`, not `server/discover`), so that every schema and result is
sent as written here.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import wave
import zlib
from typing import Any, Optional

import anyio
import mcp.types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import McpError

NAME = "mcp-conformance-test-server"
VERSION = "1.0.0"
STEP_SECONDS = 0.05  # the pause the logging and progress scenarios ask for between messages
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
RESOURCE_NOT_FOUND = -32002


# --- media made here, no files ----------------------------------------------------------


def _png_pixel() -> bytes:
    """A 1x1 red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte, then red
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _wav_silence() -> bytes:
    """A tenth of a second of 8 kHz mono silence."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)
    return out.getvalue()


PNG = _png_pixel()
PNG_B64 = base64.b64encode(PNG).decode()
WAV_B64 = base64.b64encode(_wav_silence()).decode()


# --- what the scenarios ask for -----------------------------------------------------------

NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}


def _schema(required: list[str], **properties: str) -> dict[str, Any]:
    """An object schema of string properties (name -> description)."""
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in properties.items()},
        "required": required,
    }


TOOLS = [
    types.Tool(name="test_simple_text", description="Returns a simple text content", inputSchema=NO_ARGUMENTS),
    types.Tool(name="test_image_content", description="Returns a 1x1 PNG image", inputSchema=NO_ARGUMENTS),
    types.Tool(name="test_audio_content", description="Returns a short WAV clip", inputSchema=NO_ARGUMENTS),
    types.Tool(
        name="test_embedded_resource", description="Returns an embedded text resource", inputSchema=NO_ARGUMENTS
    ),
    types.Tool(
        name="test_multiple_content_types",
        description="Returns text, an image and an embedded resource",
        inputSchema=NO_ARGUMENTS,
    ),
    types.Tool(
        name="test_tool_with_logging",
        description="Sends three log messages while it runs",
        inputSchema=NO_ARGUMENTS,
    ),
    types.Tool(name="test_error_handling", description="Always fails with isError", inputSchema=NO_ARGUMENTS),
    types.Tool(
        name="test_tool_with_progress",
        description="Reports progress 0, 50 and 100 of 100 when given a progress token",
        inputSchema=NO_ARGUMENTS,
    ),
    types.Tool(
        name="test_sampling",
        description="Asks the client's LLM (sampling/createMessage) and returns its answer",
        inputSchema=_schema(["prompt"], prompt="The prompt to send to the LLM"),
    ),
    types.Tool(
        name="test_elicitation",
        description="Asks the user for a username and an email (elicitation/create)",
        inputSchema=_schema(["message"], message="The message to show the user"),
    ),
    types.Tool(
        name="test_elicitation_sep1034_defaults",
        description="Elicits a form whose fields all have default values (SEP-1034)",
        inputSchema=NO_ARGUMENTS,
    ),
    types.Tool(
        name="test_elicitation_sep1330_enums",
        description="Elicits a form with the five kinds of enum field (SEP-1330)",
        inputSchema=NO_ARGUMENTS,
    ),
    types.Tool(
        name="json_schema_2020_12_tool",
        description="Tool with JSON Schema 2020-12 features",
        inputSchema={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                }
            },
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": False,
        },
    ),
    types.Tool(
        name="test_reconnection",
        description=(
            "SEP-1699 asks this tool to close the client's SSE stream before it answers; a stdio "
            "server has no stream to close, so it answers after a pause and the HTTP side decides"
        ),
        inputSchema=NO_ARGUMENTS,
    ),
]

ELICIT_CONTACT = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

ELICIT_DEFAULTS = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Your name", "default": "John Doe"},
        "age": {"type": "integer", "description": "Your age", "default": 30},
        "score": {"type": "number", "description": "Your score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "Your status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verified?", "default": True},
    },
}

ELICIT_ENUMS = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}

STATIC_TEXT = "This is the content of the static text resource."
RESOURCES = [
    types.Resource(
        uri="test://static-text",
        name="static-text",
        description="A static text resource",
        mimeType="text/plain",
    ),
    types.Resource(
        uri="test://static-binary",
        name="static-binary",
        description="A static binary resource (a 1x1 PNG)",
        mimeType="image/png",
    ),
    types.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        description="A resource to subscribe to",
        mimeType="text/plain",
    ),
]
TEMPLATE = types.ResourceTemplate(
    uriTemplate="test://template/{id}/data",
    name="template-data",
    description="Data for an id, substituted into the URI",
    mimeType="application/json",
)
TEMPLATE_URI = re.compile(r"^test://template/([^/]+)/data$")

PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with two arguments",
        arguments=[
            types.PromptArgument(name="arg1", description="First test argument", required=True),
            types.PromptArgument(name="arg2", description="Second test argument", required=True),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt that embeds a resource",
        arguments=[types.PromptArgument(name="resourceUri", description="URI of the resource to embed", required=True)],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
]
# Completion values for the arguments that can be completed, by (reference, argument).
COMPLETIONS = {
    ("test_prompt_with_arguments", "arg1"): ["paris", "park", "party", "test", "testing"],
    ("test_prompt_with_arguments", "arg2"): ["world", "word", "work"],
    ("test://template/{id}/data", "id"): ["1", "2", "3", "123"],
}


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _image() -> types.ImageContent:
    return types.ImageContent(type="image", data=PNG_B64, mimeType="image/png")


def _embedded(uri: str, text: str, mime_type: str = "text/plain") -> types.EmbeddedResource:
    return types.EmbeddedResource(
        type="resource", resource=types.TextResourceContents(uri=uri, mimeType=mime_type, text=text)
    )


def _failed(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[_text(text)], isError=True)


# --- the server ---------------------------------------------------------------------------


class ConformanceServer:
    """The handlers, with the little state the scenarios need: the log level the client set
    and the resources it subscribed to."""

    def __init__(self) -> None:
        self.server: Server = Server(NAME, version=VERSION)
        self.log_level = "debug"  # until the client sets one
        self.subscriptions: set[str] = set()
        s = self.server
        s.list_tools()(self.list_tools)
        s.call_tool()(self.call_tool)
        s.list_resources()(self.list_resources)
        s.list_resource_templates()(self.list_resource_templates)
        s.read_resource()(self.read_resource)
        s.subscribe_resource()(self.subscribe)
        s.unsubscribe_resource()(self.unsubscribe)
        s.list_prompts()(self.list_prompts)
        s.get_prompt()(self.get_prompt)
        s.completion()(self.complete)
        s.set_logging_level()(self.set_logging_level)

    def initialization_options(self) -> Any:
        options = self.server.create_initialization_options(NotificationOptions())
        # The SDK never claims resource subscriptions itself; this server supports them.
        options.capabilities.resources = types.ResourcesCapability(subscribe=True, listChanged=False)
        return options

    async def run(self) -> None:
        async with stdio_server() as (read_stream, write_stream):
            await self.server.run(read_stream, write_stream, self.initialization_options())

    # --- tools ------------------------------------------------------------------------

    async def list_tools(self) -> list[types.Tool]:
        return TOOLS

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        handler = getattr(self, f"tool_{name}", None)
        if handler is None:
            raise ValueError(f"unknown tool: {name}")
        return await handler(**arguments)

    async def tool_test_simple_text(self) -> list[types.ContentBlock]:
        return [_text("This is a simple text response for testing.")]

    async def tool_test_image_content(self) -> list[types.ContentBlock]:
        return [_image()]

    async def tool_test_audio_content(self) -> list[types.ContentBlock]:
        return [types.AudioContent(type="audio", data=WAV_B64, mimeType="audio/wav")]

    async def tool_test_embedded_resource(self) -> list[types.ContentBlock]:
        return [_embedded("test://embedded-resource", "This is an embedded resource content.")]

    async def tool_test_multiple_content_types(self) -> list[types.ContentBlock]:
        return [
            _text("Multiple content types test:"),
            _image(),
            _embedded("test://mixed-content-resource", json.dumps({"test": "data", "value": 123}), "application/json"),
        ]

    async def tool_test_tool_with_logging(self) -> list[types.ContentBlock]:
        for i, message in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
            if i:
                await anyio.sleep(STEP_SECONDS)
            await self.log("info", message)
        return [_text("Tool with logging executed successfully")]

    async def tool_test_error_handling(self) -> types.CallToolResult:
        return _failed("This tool intentionally returns an error for testing")

    async def tool_test_tool_with_progress(self) -> list[types.ContentBlock]:
        ctx = self.server.request_context
        token = ctx.meta.progressToken if ctx.meta is not None else None
        for i, progress in enumerate((0, 50, 100)):
            if i:
                await anyio.sleep(STEP_SECONDS)
            if token is not None:
                await ctx.session.send_progress_notification(
                    token, progress, total=100, message=f"step {i + 1} of 3", related_request_id=ctx.request_id
                )
        return [_text("Tool with progress executed successfully")]

    async def tool_test_sampling(self, prompt: str) -> Any:
        if not self.client_has("sampling"):
            return _failed("the client did not declare the sampling capability")
        ctx = self.server.request_context
        answer = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=_text(prompt))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        content = answer.content
        said = content.text if isinstance(content, types.TextContent) else f"<{content.type} content>"
        return [_text(f"LLM response: {said}")]

    async def tool_test_elicitation(self, message: str) -> Any:
        return await self.elicit(message, ELICIT_CONTACT, "User response")

    async def tool_test_elicitation_sep1034_defaults(self) -> Any:
        return await self.elicit("Please review your details", ELICIT_DEFAULTS, "Elicitation completed")

    async def tool_test_elicitation_sep1330_enums(self) -> Any:
        return await self.elicit("Please choose your options", ELICIT_ENUMS, "Elicitation completed")

    async def tool_json_schema_2020_12_tool(self, **arguments: Any) -> list[types.ContentBlock]:
        return [_text(f"Received: {json.dumps(arguments, sort_keys=True)}")]

    async def tool_test_reconnection(self) -> list[types.ContentBlock]:
        await anyio.sleep(STEP_SECONDS)
        return [_text("Reconnection test completed")]

    async def elicit(self, message: str, schema: dict[str, Any], label: str) -> Any:
        if not self.client_has("elicitation"):
            return _failed("the client did not declare the elicitation capability")
        ctx = self.server.request_context
        answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        return [_text(f"{label}: action={answer.action}, content={json.dumps(answer.content, sort_keys=True)}")]

    def client_has(self, capability: str) -> bool:
        """Whether the client declared `capability` at initialize: a server must not send
        requests for a capability the client did not declare."""
        params = self.server.request_context.session.client_params
        return params is not None and getattr(params.capabilities, capability) is not None

    async def log(self, level: str, message: str) -> None:
        if LOG_LEVELS.index(level) < LOG_LEVELS.index(self.log_level):
            return
        ctx = self.server.request_context
        await ctx.session.send_log_message(level, message, logger=NAME, related_request_id=ctx.request_id)

    # --- resources --------------------------------------------------------------------

    async def list_resources(self) -> list[types.Resource]:
        return RESOURCES

    async def list_resource_templates(self) -> list[types.ResourceTemplate]:
        return [TEMPLATE]

    async def read_resource(self, uri: Any) -> list[ReadResourceContents]:
        uri = str(uri)
        if uri == "test://static-text":
            return [ReadResourceContents(STATIC_TEXT, "text/plain")]
        if uri == "test://static-binary":
            return [ReadResourceContents(PNG, "image/png")]
        if uri == "test://watched-resource":
            watched = "subscribed" if uri in self.subscriptions else "not subscribed"
            return [ReadResourceContents(f"A resource to watch ({watched}).", "text/plain")]
        match = TEMPLATE_URI.match(uri)
        if match:
            data = {"id": match.group(1), "templateTest": True, "data": f"Data for ID: {match.group(1)}"}
            return [ReadResourceContents(json.dumps(data), "application/json")]
        raise McpError(types.ErrorData(code=RESOURCE_NOT_FOUND, message="Resource not found", data={"uri": uri}))

    async def subscribe(self, uri: Any) -> None:
        self.subscriptions.add(str(uri))

    async def unsubscribe(self, uri: Any) -> None:
        self.subscriptions.discard(str(uri))

    # --- prompts and completion -------------------------------------------------------

    async def list_prompts(self) -> list[types.Prompt]:
        return PROMPTS

    async def get_prompt(self, name: str, arguments: Optional[dict[str, str]]) -> types.GetPromptResult:
        args = arguments or {}

        def user(content: Any) -> types.PromptMessage:
            return types.PromptMessage(role="user", content=content)

        if name == "test_simple_prompt":
            return types.GetPromptResult(messages=[user(_text("This is a simple prompt for testing."))])
        if name == "test_prompt_with_arguments":
            missing = [a for a in ("arg1", "arg2") if a not in args]
            if missing:
                raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=f"missing arguments: {missing}"))
            text = f"Prompt with arguments: arg1='{args['arg1']}', arg2='{args['arg2']}'"
            return types.GetPromptResult(messages=[user(_text(text))])
        if name == "test_prompt_with_embedded_resource":
            if "resourceUri" not in args:
                raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message="missing argument: resourceUri"))
            return types.GetPromptResult(
                messages=[
                    user(_embedded(args["resourceUri"], "Embedded resource content for testing.")),
                    user(_text("Please process the embedded resource above.")),
                ]
            )
        if name == "test_prompt_with_image":
            return types.GetPromptResult(messages=[user(_image()), user(_text("Please analyze the image above."))])
        raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=f"unknown prompt: {name}"))

    async def complete(self, ref: Any, argument: types.CompletionArgument, context: Any) -> types.Completion:
        key = ref.name if isinstance(ref, types.PromptReference) else ref.uri
        values = [v for v in COMPLETIONS.get((key, argument.name), []) if v.startswith(argument.value)]
        return types.Completion(values=values, total=len(values), hasMore=False)

    # --- logging ----------------------------------------------------------------------

    async def set_logging_level(self, level: str) -> None:
        self.log_level = level


def main() -> None:
    anyio.run(ConformanceServer().run)


if __name__ == "__main__":
    main()
