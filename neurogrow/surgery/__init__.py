"""Neuron surgery: neuron groups of any timm model, their verification and in-place edits."""

from neurogrow.surgery.callback import NeuronSurgery
from neurogrow.surgery.edits import neuron_norms, remove_neurons, split_neurons, tensor_at, touched_indices
from neurogrow.surgery.events import EVENTS_FILE, read_events
from neurogrow.surgery.groups import GroupReport, NeuronGroup, TensorSlice, find_neuron_groups
from neurogrow.surgery.verify import verify_groups

__all__ = [
    "EVENTS_FILE",
    "GroupReport",
    "NeuronGroup",
    "NeuronSurgery",
    "TensorSlice",
    "find_neuron_groups",
    "neuron_norms",
    "read_events",
    "remove_neurons",
    "split_neurons",
    "tensor_at",
    "touched_indices",
    "verify_groups",
]
