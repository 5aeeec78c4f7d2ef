"""autograder.wire: plain data across the process boundary (JSON and safetensors, never pickle)."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch

from autograder import wire


def round_trip(value, limit: int = 1 << 20, resolve=None):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        wire.send(ours, {"op": "test"}, value)
        message, decoded = wire.receive(theirs, limit, resolve)
    assert message == {"op": "test"}
    return decoded


def test_tensors_of_every_graded_dtype_and_shape_come_back_exactly():
    values = {
        "bf16": torch.randn(3, 7, dtype=torch.float64).to(torch.bfloat16),
        "f64": torch.randn(2, 13, dtype=torch.float64),
        "empty": torch.zeros(0, 384),
        "scalar": torch.tensor(3.5),
        "ids": torch.arange(7),
        "view": torch.randn(5, 7).t(),  # not contiguous
    }
    back = round_trip(values)
    for key, tensor in values.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor), key


def test_python_containers_keep_their_kind():
    value = {"pair": (1, 2.5), "list": [None, True, "text", float("nan")], "nested": {"a": [(torch.ones(2),)]}}
    back = round_trip(value)
    assert back["pair"] == (1, 2.5) and isinstance(back["pair"], tuple)
    assert back["list"][:3] == [None, True, "text"] and np.isnan(back["list"][3])
    assert torch.equal(back["nested"]["a"][0][0], torch.ones(2))


def test_numpy_arrays_come_back_as_arrays():
    back = round_trip([np.arange(6, dtype=np.float32).reshape(2, 3), np.float64(2.0)])
    assert isinstance(back[0], np.ndarray) and back[0].shape == (2, 3)
    assert back[1] == 2.0


def test_other_objects_are_reported_not_sent():
    class Sneaky:
        def __reduce__(self):  # pickle would run this on the other side
            raise AssertionError("pickle must never be used")

        def __repr__(self):
            return "Sneaky()"

    back = round_trip({"x": Sneaky(), "module": torch.nn.Linear(2, 2)})
    assert isinstance(back["x"], wire.Opaque) and back["x"].repr == "Sneaky()"
    assert back["module"].type == "torch.nn.modules.linear.Linear"


def test_frames_are_json_and_safetensors_only():
    frame = wire.pack({"op": "call"}, {"args": [torch.ones(2, 3)]})
    text_size, blob_size = wire.HEADER.unpack(frame[: wire.HEADER.size])
    message = json.loads(frame[wire.HEADER.size : wire.HEADER.size + text_size])
    assert message["value"] == {"__dict__": {"args": [{"__tensor__": "t0", "kind": "tensor"}]}}
    assert blob_size == len(frame) - wire.HEADER.size - text_size


def test_oversized_and_malformed_frames_are_refused():
    with pytest.raises(wire.WireError, match="over the"):
        round_trip(torch.zeros(1000), limit=100)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(wire.HEADER.pack(5, 0) + b"{nope")
        with pytest.raises(wire.WireError, match="malformed"):
            wire.receive(theirs, 1 << 20)


def test_references_to_worker_objects_resolve_only_where_a_resolver_is_given():
    value = {"model": wire.Ref("encoder_model"), "proj": wire.Linear(torch.ones(2, 3), None)}
    with pytest.raises(wire.WireError, match="only accepted by the worker"):
        round_trip(value)
    back = round_trip(value, resolve=lambda kind, payload: (kind, payload))
    assert back["model"] == ("__ref__", "encoder_model")
    assert back["proj"][0] == "__linear__" and torch.equal(back["proj"][1]["weight"], torch.ones(2, 3))
