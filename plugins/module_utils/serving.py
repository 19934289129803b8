# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Model serving (KServe + vLLM): will a model fit the GPU resource config.yml gives it?

Pure functions over plain data; no Ansible imports. The estimate is deliberately simple and
conservative enough to catch impossible placements before anything is deployed:

    need  = weights x (1 + kv_cache_share)
    weights = parameters x bytes per parameter (dtype)
    usable  = memory of one device x devices x gpu_memory_utilization (vLLM's own cap)

A device is a whole GPU (the catalog's ``memory_mib``), or a MIG device, whose memory is its share
of the GPU's memory slices (``memory_slices / memory_slice_count x memory_mib``). A time-sliced or
MPS-shared ``nvidia.com/gpu`` replica is counted as the whole GPU: sharing does not partition
memory (vLLM would still take ``gpu_memory_utilization`` of all of it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, versions

# Bytes per parameter of the weights.
DTYPE_BYTES = {
    "float32": 4.0,
    "float16": 2.0,
    "bfloat16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}
# What vLLM's --dtype takes; quantized checkpoints (fp8, int8, int4) carry their own format.
VLLM_DTYPES = ("float16", "bfloat16", "float32")
STORAGE_SCHEMES = ("hf", "pvc", "s3")
ISVC = "InferenceService"
LLMISVC = "LLMInferenceService"
MIB = 1024 * 1024
MIG_PREFIX = "nvidia.com/mig-"
# tensor parallel sizes vLLM shards attention heads over in practice (heads divide evenly).
TP_SIZES = (1, 2, 4, 8, 16)


class ServingError(ValueError):
    """A model cannot be served as configured."""


def storage_scheme(uri):
    """``hf``, ``pvc`` or ``s3`` for a storage URI; ServingError for any other scheme."""
    text = str(uri or "")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in STORAGE_SCHEMES or not rest:
        raise ServingError("storage URI %r: the scheme must be one of %s (hf://org/model, pvc://claim/path, "
                           "s3://bucket/path)" % (text, ", ".join("%s://" % s for s in STORAGE_SCHEMES)))
    return scheme


def weights_mib(parameters_billion, dtype):
    """MiB of weights for ``parameters_billion`` parameters stored as ``dtype``."""
    if dtype not in DTYPE_BYTES:
        raise ServingError("unknown dtype %r; known: %s" % (dtype, ", ".join(sorted(DTYPE_BYTES))))
    if not isinstance(parameters_billion, (int, float)) or parameters_billion <= 0:
        raise ServingError("parameters_billion must be a positive number, got %r" % (parameters_billion,))
    return parameters_billion * 1e9 * DTYPE_BYTES[dtype] / MIB


def required_mib(parameters_billion, dtype, kv_cache_share):
    """GPU memory (MiB) the model needs: weights plus ``kv_cache_share`` of them for KV cache and activations."""
    if not isinstance(kv_cache_share, (int, float)) or kv_cache_share < 0:
        raise ServingError("kv_cache_share must be a number >= 0, got %r" % (kv_cache_share,))
    return weights_mib(parameters_billion, dtype) * (1.0 + kv_cache_share)


def device_memory_mib(model, resource):
    """MiB of one device of ``resource`` on a GPU of catalog model ``model`` (key or GpuModel).

    ``nvidia.com/gpu`` (and ``nvidia.com/gpu.shared``) is the whole GPU; ``nvidia.com/mig-<profile>``
    (``+`` advertised as ``.``) is the profile's share of the memory slices. None when unknown.
    """
    entry = gpu_catalog.lookup(model) if not isinstance(model, gpu_catalog.GpuModel) else model
    if resource in ("nvidia.com/gpu", "nvidia.com/gpu.shared"):
        return float(entry.memory_mib)
    if resource.startswith(MIG_PREFIX):
        base = resource[:-len(".shared")] if resource.endswith(".shared") else resource
        for profile in entry.profiles:
            if profile.resource_name == base and entry.memory_slice_count:
                return entry.memory_mib * profile.memory_slices / float(entry.memory_slice_count)
    return None


def is_mig(resource):
    """True for a MIG device resource: a CUDA process sees one MIG device, so a model gets exactly one."""
    return str(resource).startswith(MIG_PREFIX)


def usable_mib(device_mib, count, gpu_memory_utilization):
    return device_mib * count * gpu_memory_utilization


def _gib(mib):
    return "%.1f GiB" % (mib / 1024.0)


def fit_candidates(pools, need_mib, gpu_memory_utilization):
    """Placements that fit, smallest total memory first.

    ``pools``: {pool name: {"model": catalog key, "resources_per_node": {resource: count}, "shared": bool}}.
    A replica runs on one node, so a resource can be asked for at most as many times as one node offers
    (and a tensor parallel size that vLLM supports: 1, 2, 4, 8, 16). On a shared pool (time-slicing,
    MPS) several replicas of a GPU may be the same GPU, and a process sees one MIG device: one device.
    Returns [{"pool", "resource", "count", "device_mib", "usable_mib"}].
    """
    out = []
    for name, pool in sorted(pools.items()):
        model = pool.get("model")
        if not model or model == "auto":
            continue
        try:
            entry = gpu_catalog.lookup(model)
        except ValueError:
            continue
        for resource, per_node in sorted((pool.get("resources_per_node") or {}).items()):
            device = device_memory_mib(entry, resource)
            if device is None:
                continue
            for count in TP_SIZES:
                if count > per_node or (count > 1 and (pool.get("shared") or is_mig(resource))):
                    break
                usable = usable_mib(device, count, gpu_memory_utilization)
                if usable >= need_mib:
                    out.append({"pool": name, "resource": resource, "count": count, "device_mib": device,
                                "usable_mib": usable})
                    break
    out.sort(key=lambda c: (c["device_mib"] * c["count"], c["count"], c["pool"], c["resource"]))
    return out


def describe_candidate(candidate):
    return "pool '%s' %s with gpus: %d and tensor_parallel_size: %d (%d x %s)" % (
        candidate["pool"], candidate["resource"], candidate["count"], candidate["count"], candidate["count"],
        _gib(candidate["device_mib"]))


def check_fit(model, pools, kv_cache_share=0.2, gpu_memory_utilization=0.9):
    """None when ``model`` (a services.kserve.models[] entry) fits its GPU resource, else a message.

    ``pools``: as for :func:`fit_candidates`; the model's ``pool`` is one of them. A model without
    ``parameters_billion``, or on a pool of unknown GPU model (``auto``), is not checked.
    """
    params = model.get("parameters_billion")
    pool = pools.get(model.get("pool")) or {}
    pool_model = pool.get("model")
    if params is None or not pool_model or pool_model == "auto":
        return None
    dtype = model.get("dtype", "bfloat16")
    resource = model.get("gpu_resource", "nvidia.com/gpu")
    gpus = model.get("gpus", 1)
    device = device_memory_mib(pool_model, resource)
    if device is None:
        return None
    need = required_mib(params, dtype, kv_cache_share)
    devices = 1 if pool.get("shared") else gpus
    have = usable_mib(device, devices, gpu_memory_utilization)
    if need <= have:
        return None
    candidates = fit_candidates(pools, need, gpu_memory_utilization)
    hint = ("smallest placement that fits: %s" % describe_candidate(candidates[0]) if candidates else
            "no pool offers enough GPU memory on one node; use a smaller or quantized model (dtype fp8/int8/int4)")
    return ("%sB parameters in %s need about %s of GPU memory (%s weights + %d%% KV cache, "
            "services.kserve.kv_cache_share), but %d x %s gives %s usable (%d x %s x gpu_memory_utilization %s%s); %s"
            % (_num(params), dtype, _gib(need), _gib(weights_mib(params, dtype)), round(kv_cache_share * 100),
               gpus, resource, _gib(have), devices, _gib(device), _num(gpu_memory_utilization),
               "; a shared GPU counts once" if pool.get("shared") else "", hint))


def _num(value):
    return ("%g" % value) if isinstance(value, float) else str(value)


def vllm_args(model, gpu_memory_utilization=0.9, engine_args=()):
    """vLLM engine flags for one model (appended to the runtime's command line by KServe)."""
    args = ["--tensor-parallel-size=%d" % model.get("tensor_parallel_size", model.get("gpus", 1))]
    if model.get("max_model_len"):
        args.append("--max-model-len=%d" % model["max_model_len"])
    if model.get("dtype", "bfloat16") in VLLM_DTYPES:
        args.append("--dtype=%s" % model.get("dtype", "bfloat16"))
    args.append("--gpu-memory-utilization=%s" % _num(float(gpu_memory_utilization)))
    args.extend(str(a) for a in engine_args or ())
    return args


def llm_args(args, service_engine_args=()):
    """vLLM flags for an LLMInferenceService's ``main`` container (appended to ``vllm serve`` by KServe's
    LLMInferenceServiceConfig template): the model's flags without ``--tensor-parallel-size``, which KServe
    derives from ``spec.parallelism.tensor``, with the service-wide ``engine_args`` first (an InferenceService
    gets those from the vLLM runtime)."""
    own = [a for a in args if not str(a).startswith("--tensor-parallel-size")]
    return [str(a) for a in service_engine_args or ()] + own


def plan_models(service, mlflow=None):
    """services.kserve with each model completed for the role: defaults, ``scheme``, vLLM ``args`` and the
    memory estimate; ``vllm_image`` is the pinned runtime image (versions.IMAGES). A ``registry`` model (MLflow,
    ``mlflow`` is the planned services.mlflow) is an s3:// model whose ``storage_uri`` the kserve role resolves,
    read with the MLflow artifact store's credentials and endpoint."""
    out = dict(service, vllm_image=versions.IMAGES["vllm"])
    models = []
    for model in service.get("models") or []:
        model = dict(model)
        model.setdefault("kind", ISVC)
        model.setdefault("gpus", model.get("tensor_parallel_size", 1))
        model.setdefault("tensor_parallel_size", model["gpus"])
        if model.get("registry") is not None:
            store = (mlflow or {}).get("artifact_store") or {}
            endpoint = str(store.get("endpoint") or "https://")
            model.update(scheme="s3", storage_uri=None, credentials=store.get("credentials"),
                         s3_endpoint=endpoint.split("://", 1)[-1], s3_use_https=endpoint.startswith("https://"))
            if store.get("region"):
                model["s3_region"] = store["region"]
        elif model.get("storage_uri") is not None:
            model["scheme"] = storage_scheme(model["storage_uri"])
        else:  # only with services.kserve off: validation requires storage_uri or registry when it is on
            model["scheme"] = None
        model["args"] = vllm_args(model, service.get("gpu_memory_utilization", 0.9), model.get("engine_args"))
        if model["kind"] == LLMISVC:
            model.setdefault("replicas", 1)
            model["args"] = llm_args(model["args"], service.get("engine_args"))
        else:
            model.setdefault("min_replicas", 1)
            model.setdefault("max_replicas", max(model["min_replicas"], 1))
        if model.get("parameters_billion") is not None:
            model["memory_estimate_mib"] = int(math.ceil(required_mib(
                model["parameters_billion"], model.get("dtype", "bfloat16"), service.get("kv_cache_share", 0.2))))
        models.append(model)
    out["models"] = models
    return out
