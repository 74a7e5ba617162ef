"""The registry as a W3C PROV document (PROV-JSON), the standard sidecar of numbers.json.

Each reported number is a ``prov:Entity``; the Snakemake job that computed it a
``prov:Activity`` that ``used`` its input files (entities carrying their SHA-256) and the
script (carrying its git blob hash); the number ``wasGeneratedBy`` the job. Built with the
``prov`` package (the W3C PROV reference implementation for Python).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prov.model import ProvDocument

NS = "https://metabuild.invalid/ns#"


def registry_to_prov(registry: Mapping[str, Any]) -> dict:
    """The PROV-JSON document of a registry's resolved view (:func:`metabuild.registry.read_registry`
    or :func:`~metabuild.registry.resolve`): one activity per job, however many numbers it made."""
    import json

    doc = ProvDocument()
    doc.add_namespace("mb", NS)
    doc.add_namespace("num", NS + "number/")
    doc.add_namespace("job", NS + "job/")
    doc.add_namespace("file", NS + "file/")
    seen_jobs: set[str] = set()
    seen_files: set[str] = set()
    for key, entry in registry["numbers"].items():
        prov = entry["provenance"]
        job_id = "job:" + prov["job"].replace("[", "/").replace("]", "").replace(", ", "/").replace("=", "-")
        number = doc.entity(
            f"num:{key}", {"mb:value": str(entry["value"]), "mb:text": entry["text"], "mb:kind": entry["kind"]}
        )
        if prov["job"] not in seen_jobs:
            seen_jobs.add(prov["job"])
            activity = doc.activity(job_id, None, None, {"mb:rule": prov["rule"]})
            script = prov["script"]
            script_entity = doc.entity(f"file:{script['path']}", {"mb:gitBlob": str(script["git_blob"])})
            doc.used(activity, script_entity)
            for item in prov["inputs"]:
                file_id = f"file:{item['path']}"
                if file_id not in seen_files:
                    seen_files.add(file_id)
                    doc.entity(file_id, {"mb:sha256": item["sha256"]})
                doc.used(job_id, file_id)
        doc.wasGeneratedBy(number, job_id)
    return json.loads(doc.serialize(format="json"))
