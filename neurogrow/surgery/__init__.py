"""Neuron surgery: neuron groups of any timm model, their verification and in-place edits, the callback."""

from neurogrow.surgery.callback import NeuronSurgery
from neurogrow.surgery.config import SurgeryConfig
from neurogrow.surgery.edits import remove_neurons, split_neurons, tensor_at
from neurogrow.surgery.events import EVENTS_FILE, read_events
from neurogrow.surgery.groups import find_neuron_groups
from neurogrow.surgery.scores import neuron_norms
from neurogrow.surgery.types import GroupReport, NeuronGroup, TensorSlice
from neurogrow.surgery.verify import verify_groups

__all__ = [
    "EVENTS_FILE",
    "GroupReport",
    "NeuronGroup",
    "NeuronSurgery",
    "SurgeryConfig",
    "TensorSlice",
    "find_neuron_groups",
    "neuron_norms",
    "read_events",
    "remove_neurons",
    "split_neurons",
    "tensor_at",
    "verify_groups",
]
