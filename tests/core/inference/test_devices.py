"""core.inference.devices: the Device value and --device resolved once."""

from __future__ import annotations

import pytest

from core.inference import devices
from core.inference.devices import Device, resolve_device
from core.runtime.errors import LiverSegError


def test_device_value():
    gpu, cpu = Device("jax", gpu=True), Device("tensorflow")
    assert (gpu.keras_device, gpu.text, gpu.batch_size) == (None, "jax GPU", 32)
    assert (cpu.keras_device, cpu.text, cpu.batch_size) == ("cpu:0", "tensorflow CPU", 8)
    assert Device("tensorflow", note="Keras not installed").text == "tensorflow CPU (Keras not installed)"
    assert gpu.on_cpu() == Device("jax") and hash(gpu) != hash(cpu)


@pytest.mark.parametrize("found, request_, expected", [
    (Device("torch", gpu=True), None, Device("torch", gpu=True)),
    (Device("torch", gpu=True), "cpu", Device("torch")),
    (Device("torch", gpu=True), "gpu", Device("torch", gpu=True)),
    (Device("tensorflow"), None, Device("tensorflow")),
    (Device("tensorflow"), "cpu", Device("tensorflow")),
])
def test_resolve_device(monkeypatch, found, request_, expected):
    monkeypatch.setattr(devices, "default_device", lambda: found)
    assert resolve_device(request_) == expected


def test_gpu_asked_for_without_one(monkeypatch):
    monkeypatch.setattr(devices, "default_device", lambda: Device("tensorflow"))
    with pytest.raises(LiverSegError, match="sees no GPU"):
        resolve_device("gpu")
    with pytest.raises(LiverSegError, match="unknown device"):
        resolve_device("tpu")


def test_no_gpu_driver_answers_without_keras(monkeypatch):
    monkeypatch.setattr(devices, "gpu_possible", lambda: False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert devices.default_device() == Device("jax")
