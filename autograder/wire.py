"""The wire format between the grader and the worker: plain data only, never pickle.

Everything that crosses the process boundary is a *frame*: a 16-byte header holding two
big-endian unsigned lengths, then that many bytes of UTF-8 JSON (the structure), then that many
bytes of safetensors (the tensors). Neither format can execute code when it is read, so a
submission can send back wrong values, but never an object that runs code in the grader.

Values are encoded as a JSON tree:

==========================  ==================================================
Python value                JSON
==========================  ==================================================
None, bool, int, float, str  itself (NaN and infinities as JSON's extensions)
list                         a JSON array
tuple                        ``{"__tuple__": [...]}``
dict with str keys           ``{"__dict__": {...}}``
torch.Tensor, numpy array    ``{"__tensor__": "t0", "kind": "tensor"|"ndarray"}``,
                             the data under key ``t0`` of the safetensors blob
anything else                ``{"__object__": "module.Type", "repr": "..."}``,
                             decoded as :class:`Opaque` (the grader only reports it)
:class:`Ref`                 ``{"__ref__": "encoder_model"}``: an object the worker
                             preloaded (grader to worker only)
:class:`Linear`              ``{"__linear__": {...}}``: a ``torch.nn.Linear`` the worker
                             builds from plain weights (grader to worker only)
==========================  ==================================================

This module imports only the standard library, torch and safetensors: the worker imports it
before any student code runs.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from enum import Enum

import torch
from safetensors.torch import load as _load_tensors
from safetensors.torch import save as _save_tensors

HEADER = struct.Struct("!QQ")  # (JSON length, safetensors length)
MAX_DEPTH = 32  # nesting accepted in a value (deeper values are reported as opaque)
MAX_ITEMS = 100_000  # list/dict items accepted in one value


class ErrorKind(str, Enum):
    """Why a call of a student function returned no value: what the worker reports, and what the grader explains."""

    EXCEPTION = "exception"  # it raised
    NOT_IMPLEMENTED = "not_implemented"  # it raised NotImplementedError: still the lab's stub
    MEMORY = "memory"  # it ran out of memory
    TIMEOUT = "timeout"  # it ran out of time
    EXIT = "exit"  # it called sys.exit
    MISSING = "missing"  # the submission does not define it
    OBSERVE = "observe"  # looking at its mutated arguments afterwards failed
    PROTOCOL = "protocol"  # the worker could not serve the request
    UNSENDABLE = "unsendable"  # its result could not be sent back as plain data
    CRASHED = "crashed"  # the process running it died


class WireError(RuntimeError):
    """A frame that cannot be read: truncated, oversized or malformed."""


@dataclass(frozen=True)
class Ref:
    """An object the worker loaded before forking (``encoder_model``, ``decoder_tokenizer``...)."""

    name: str


@dataclass(frozen=True)
class Linear:
    """A ``torch.nn.Linear`` rebuilt in the worker from its weight (out, in) and optional bias (out,)."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None


@dataclass(frozen=True)
class Opaque:
    """A value the worker could not send as plain data: only its type and a short repr come back."""

    type: str
    repr: str

    def __str__(self) -> str:
        return f"a {self.type} object"

    def __describe__(self) -> str:  # how feedback names it (book.labs.compare)
        return str(self)


def _type_name(value) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _short_repr(value, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception:  # a student's __repr__ may raise
        text = "<repr failed>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode(value) -> tuple[object, dict[str, torch.Tensor]]:
    """Split ``value`` into a JSON-ready tree and the tensors it refers to (by key)."""
    tensors: dict[str, torch.Tensor] = {}
    budget = [MAX_ITEMS]

    def tensor_node(tensor: torch.Tensor, kind: str) -> dict:
        key = f"t{len(tensors)}"
        # A detached, contiguous CPU copy: safetensors refuses views that share storage.
        tensors[key] = tensor.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key, "kind": kind}

    def walk(item, depth: int):
        budget[0] -= 1
        if depth > MAX_DEPTH or budget[0] < 0:
            return {"__object__": _type_name(item), "repr": "<too deeply nested or too large to send>"}
        if item is None or isinstance(item, (bool, str)):
            return item
        if isinstance(item, (int, float)) and type(item) in (int, float):
            return item
        if isinstance(item, Ref):
            return {"__ref__": item.name}
        if isinstance(item, Linear):
            return {"__linear__": {"weight": walk(item.weight, depth + 1), "bias": walk(item.bias, depth + 1)}}
        if isinstance(item, torch.Tensor):
            if item.layout != torch.strided or item.is_quantized or item.dtype.is_complex:
                return {"__object__": f"torch.Tensor ({item.layout}, {item.dtype})", "repr": _short_repr(item)}
            return tensor_node(item, "tensor")
        if type(item).__module__ == "numpy":
            import numpy

            if isinstance(item, numpy.ndarray) and item.dtype.kind in "biuf":
                return tensor_node(torch.from_numpy(numpy.ascontiguousarray(item)), "ndarray")
            if isinstance(item, numpy.generic) and item.dtype.kind in "biuf":
                return item.item()
        if type(item) is list:
            return [walk(x, depth + 1) for x in item]
        if type(item) is tuple:
            return {"__tuple__": [walk(x, depth + 1) for x in item]}
        if type(item) is dict and all(type(k) is str for k in item):
            return {"__dict__": {k: walk(v, depth + 1) for k, v in item.items()}}
        return {"__object__": _type_name(item), "repr": _short_repr(item)}

    return walk(value, 0), tensors


def decode(tree, tensors: dict[str, torch.Tensor], resolve=None):
    """Rebuild a value from its tree; ``resolve`` turns ``__ref__``/``__linear__`` nodes into objects (worker only)."""

    def walk(node):
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        if "__tensor__" in node:
            key = node["__tensor__"]
            if key not in tensors:
                raise WireError(f"the frame refers to tensor {key!r} but does not carry it")
            tensor = tensors[key]
            if node.get("kind") == "ndarray":
                return tensor.numpy()
            return tensor
        if "__tuple__" in node:
            return tuple(walk(x) for x in node["__tuple__"])
        if "__dict__" in node:
            return {k: walk(v) for k, v in node["__dict__"].items()}
        if "__object__" in node:
            return Opaque(str(node["__object__"]), str(node.get("repr", "")))
        if "__ref__" in node or "__linear__" in node:
            if resolve is None:
                raise WireError("references to worker objects are only accepted by the worker")
            if "__linear__" in node:
                return resolve("__linear__", {k: walk(v) for k, v in node["__linear__"].items()})
            return resolve("__ref__", node["__ref__"])
        raise WireError(f"unknown node in frame: {sorted(node)[:3]}")

    return walk(tree)


def prepare(message: dict, value=None) -> tuple[dict, bytes]:
    """The two parts of a frame: ``message`` with ``value``'s tree under ``"value"``, and the safetensors blob."""
    if value is None:
        return message, b""
    tree, tensors = encode(value)
    return {**message, "value": tree}, _save_tensors(tensors) if tensors else b""


def frame(message: dict, blob: bytes = b"") -> bytes:
    """The bytes of one frame made of a prepared message and blob."""
    text = json.dumps(message, allow_nan=True).encode("utf-8")
    return HEADER.pack(len(text), len(blob)) + text + blob


def pack(message: dict, value=None) -> bytes:
    """One frame: ``message`` (JSON-ready) with ``value`` encoded under its ``"value"`` key."""
    return frame(*prepare(message, value))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, message: dict, value=None) -> None:
    """Write one frame to a stream socket."""
    sock.sendall(pack(message, value))


def receive(sock: socket.socket, limit: int, resolve=None) -> tuple[dict, object]:
    """Read one frame: the JSON message and its decoded ``"value"`` (None when absent).

    A frame larger than ``limit`` bytes is refused before it is read, so a worker cannot make
    the grader allocate without bound.
    """
    text_size, blob_size = HEADER.unpack(_recv_exactly(sock, HEADER.size))
    if text_size + blob_size > limit:
        raise WireError(f"a reply of {text_size + blob_size} bytes is over the {limit}-byte limit")
    text, blob = _recv_exactly(sock, text_size), _recv_exactly(sock, blob_size)
    try:
        message = json.loads(text.decode("utf-8"))
        tensors = _load_tensors(blob) if blob else {}
    except Exception as error:  # bad UTF-8, bad JSON, or a safetensors header that does not parse
        raise WireError(f"malformed frame: {error}") from None
    if not isinstance(message, dict):
        raise WireError("malformed frame: the JSON part is not an object")
    value = decode(message.pop("value"), tensors, resolve) if "value" in message else None
    return message, value
