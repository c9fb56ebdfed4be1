"""Writes of the quality app: computing and storing quality reports, and buyer evaluations.

What each report kind reads and how the engine computes it is its adapter's business
(``quality.kinds``); figures come from ``quality.engine`` only: this module never computes
a metric itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import DatasetVersion
from datasets.selectors import (
    version_audit_sample,
    version_evaluation_annotations,
    version_evaluation_reference,
    version_published_for_slug,
)
from datasets.splits import EVALUATION_KINDS
from marketplace.accounts.selectors import buyer_organizations
from marketplace.core.errors import Forbidden, InvalidInput, LimitExceeded, NotFound, TooManyRequests, field_error
from marketplace.core.events import publish
from marketplace.core.storage import CHUNK, get_storage
from quality.engine import ENGINE_VERSION, gate, native
from quality.engine.audit import ap_figures
from quality.engine.cache import ReferenceCache
from quality.engine.cocoeval import EvalParams, evaluate
from quality.engine.errors import EngineInputError
from quality.errors import QualityErrorCode
from quality.events import QualityReportStored
from quality.kinds import ADAPTERS, sha256_hex
from quality.models import BuyerEvaluation, EvaluationSplit, EvaluationState, QualityReport, ReportStatus
from quality.tasks import evaluation_run_task

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None] | None


# ---------------------------------------------------------------- report_compute


def _report_prefix(*, version_id: int, kind: str, checksum: str) -> str:
    # A fresh attempt folder under the key's prefix: two racing workers never write the
    # same object, so the loser can delete exactly its own objects.
    return f"versions/{version_id}/quality/{kind}/{ENGINE_VERSION}/{checksum}/{uuid.uuid4().hex[:12]}"


def _upload_artifacts(*, prefix: str, report: dict, plots_dir: Path) -> dict[str, Any]:
    storage = get_storage()
    uploaded: dict[str, Any] = {"report": f"{prefix}/report.json", "plots": {}}
    storage.put_bytes(uploaded["report"], json.dumps(report, default=str).encode(), content_type="application/json")
    for png in sorted(plots_dir.glob("*.png")):
        key = f"{prefix}/plots/{png.name}"
        storage.put_file(key, png, content_type="image/png")
        uploaded["plots"][png.stem] = key
    return uploaded


def _artifact_keys(artifacts: dict[str, Any]) -> list[str]:
    keys = [artifacts["report"]] if artifacts.get("report") else []
    return keys + list((artifacts.get("plots") or {}).values())


def _delete_objects(keys: Iterable[str]) -> None:
    storage = get_storage()
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001 - best effort; the sweeper reconciles leftovers
            log.warning("could not delete orphan object %s", key, exc_info=True)


def report_compute(*, version_id: int, kind: str, device: str | None = None, progress: Progress = None) -> QualityReport:
    """Compute (or return the stored) report of ``kind`` for the version.

    Idempotent: keyed by (version, kind, ENGINE_VERSION, inputs checksum). A concurrent
    duplicate loses on the unique constraint, deletes the objects it uploaded and returns the
    winner's row, so every stored object has a row. Inputs the kind needs but that do not
    exist yet give a ``no_input`` row (its checksum changes when they arrive).
    Engine input errors raise InvalidInput (a poison input, not worth a retry).
    """
    adapter = ADAPTERS.get(kind)
    if adapter is None:
        raise InvalidInput(f"Unknown report kind {kind!r}.", code=QualityErrorCode.INVALID_KIND, details=[field_error("kind", "unknown report kind")])
    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id).first()
    if version is None:
        raise NotFound("Version not found.", code=QualityErrorCode.VERSION_NOT_FOUND)
    device = device or settings.QUALITY_DEVICE
    steps = 4
    if progress:
        progress(0, steps)
    inputs = adapter.gather(version=version)
    checksum = inputs.checksum()
    key = {"version": version, "kind": kind, "engine_version": ENGINE_VERSION, "inputs_checksum": checksum}
    existing = QualityReport.objects.filter(**key).first()
    if existing is not None:
        if progress:
            progress(steps, steps)
        return existing
    if progress:
        progress(1, steps)

    started = time.monotonic()
    summary: dict[str, Any]
    artifacts: dict[str, Any] = {}
    status = ReportStatus.OK
    if inputs.missing:
        status, summary = ReportStatus.NO_INPUT, {"reason": inputs.missing}
    else:
        with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
            plots_dir = Path(tmp) / "plots"
            plots_dir.mkdir()
            try:
                full, summary = adapter.run(version=version, inputs=inputs, device=device, plots_dir=plots_dir)
            except EngineInputError as exc:
                raise InvalidInput(exc.message, code=exc.code, details=[field_error(exc.location or kind, exc.message, exc.code)]) from exc
            if progress:
                progress(2, steps)
            full = {"kind": kind, "engine_version": ENGINE_VERSION, "inputs_checksum": checksum, "device": device, "report": full}
            prefix = _report_prefix(version_id=version.pk, kind=kind, checksum=checksum)
            try:
                artifacts = _upload_artifacts(prefix=prefix, report=full, plots_dir=plots_dir)
            except Exception:
                _delete_objects(get_storage().list_keys(prefix + "/"))
                raise
    if progress:
        progress(3, steps)
    try:
        with transaction.atomic():
            report = QualityReport.objects.create(
                **key, status=status, summary=summary, artifacts=artifacts, device=device if status == ReportStatus.OK else "",
                seconds=round(time.monotonic() - started, 3),
            )
            publish(QualityReportStored(version_id=version.pk, kind=kind))
    except IntegrityError:
        _delete_objects(_artifact_keys(artifacts))
        report = QualityReport.objects.get(**key)
    except Exception:
        _delete_objects(_artifact_keys(artifacts))
        raise
    if progress:
        progress(steps, steps)
    return report


# ---------------------------------------------------------------- buyer evaluation

# The public evaluation split: images whose file lies under a folder named like these.
SPLIT_FOLDERS = frozenset({"val", "valid", "validation", "eval", "evaluation", "test"})
SPLIT_FRACTION = 0.10
MAX_DETECTIONS = 1_000_000
MAX_ERRORS_SHOWN = 20


def _image_in_split_folder(file_name: str) -> bool:
    parts = [p.lower() for p in re.split(r"[\\/]+", file_name or "")[:-1]]
    return any(p in SPLIT_FOLDERS for p in parts)


def split_image_ids(*, coco: dict, audit_sample: Iterable[int], seed: int) -> tuple[list[int], str]:
    """The public evaluation split of a COCO annotation set: ``(image ids, rule)``.

    1. The images whose ``file_name`` lies in a folder named val/valid/validation/eval/
       evaluation/test, if there are any (the seller's own held-out split).
    2. Else a seeded 10 % (at least one image) of the images outside the audit sample: the
       images are ordered by sha256("<seed>:<image id>") and the first ceil(10 %) taken, so
       the split does not depend on file order and never reveals audited images.
    """
    images = coco.get("images", [])
    by_folder = sorted(int(img["id"]) for img in images if _image_in_split_folder(str(img.get("file_name", ""))))
    if by_folder:
        return by_folder, "folder"
    audited = {int(i) for i in audit_sample}
    pool = [int(img["id"]) for img in images if int(img["id"]) not in audited] or [int(img["id"]) for img in images]
    if not pool:
        return [], "seeded"
    pool.sort(key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return sorted(pool[: max(1, math.ceil(len(pool) * SPLIT_FRACTION))]), "seeded"


def _split_details(*, coco: dict, image_ids: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a buyer may see of the split: each image's id, file name and size (in
    ``image_ids`` order) and the categories' ids and names; never an annotation."""
    wanted = set(image_ids)
    by_id = {
        int(img["id"]): {"id": int(img["id"]), "file_name": str(img.get("file_name") or ""), "width": img.get("width"), "height": img.get("height")}
        for img in coco.get("images", [])
        if int(img["id"]) in wanted
    }
    images = [by_id[i] for i in image_ids if i in by_id]
    categories = [{"id": int(c["id"]), "name": str(c.get("name", c["id"]))} for c in sorted(coco.get("categories", []), key=lambda c: int(c["id"]))]
    return images, categories


def evaluation_split_get(*, version: DatasetVersion) -> EvaluationSplit:
    """The version's public evaluation split, computed once and stored (idempotent), with
    the images' file names and sizes and the category names a buyer needs to run a model
    on it. A split stored before those were kept gets them on its first read."""
    split = EvaluationSplit.objects.filter(version=version).first()
    if split is not None:
        split.version = version  # the caller's row: no query to reach it again
    if split is not None and (split.images or not split.image_ids):
        return split
    coco, _split, kind = version_evaluation_annotations(version=version)
    if coco is None:
        if split is not None:
            return split
        raise NotFound("This listing has no evaluation split.", code=QualityErrorCode.NO_EVALUATION_SPLIT)
    if split is not None:
        split.images, split.categories = _split_details(coco=coco, image_ids=list(split.image_ids))
        EvaluationSplit.objects.filter(pk=split.pk, images=[]).update(images=split.images, categories=split.categories)
        return split
    if kind in EVALUATION_KINDS:  # the seller's declared test (else val) split, whole
        image_ids, rule = sorted(int(img["id"]) for img in coco.get("images", [])), "split"
    else:
        image_ids, rule = split_image_ids(coco=coco, audit_sample=version_audit_sample(version=version), seed=version.pk)
    category_ids = sorted(int(c["id"]) for c in coco.get("categories", []))
    images, categories = _split_details(coco=coco, image_ids=image_ids)
    try:
        with transaction.atomic():
            return EvaluationSplit.objects.create(version=version, image_ids=image_ids, category_ids=category_ids, rule=rule, images=images, categories=categories)
    except IntegrityError:
        return EvaluationSplit.objects.get(version=version)


def evaluation_split_for_buyer(*, user, slug: str) -> EvaluationSplit:
    """The public evaluation split of the listing ``slug`` for a member of a buyer
    organization (Forbidden otherwise; NotFound when nothing of it is published)."""
    if not buyer_organizations(user=user).exists():
        raise Forbidden("Only members of a buyer organization can fetch a listing's evaluation split.", code=QualityErrorCode.NOT_A_BUYER)
    return evaluation_split_get(version=version_published_for_slug(slug=slug))


def _validate_results(results: Any, *, split: EvaluationSplit) -> int:
    """Check the results list against the split; raise InvalidInput listing the bad entries."""
    if not isinstance(results, list):
        raise InvalidInput("Results must be a JSON list of COCO detections.", code=QualityErrorCode.INVALID_RESULTS, details=[field_error("", "expected a list")])
    if len(results) > MAX_DETECTIONS:
        raise LimitExceeded(f"At most {MAX_DETECTIONS} detections per evaluation.", code=QualityErrorCode.TOO_MANY_DETECTIONS, details=[field_error("", f"{len(results)} detections")])
    if not results:
        raise InvalidInput("Results are empty.", code=QualityErrorCode.INVALID_RESULTS, details=[field_error("", "at least one detection is needed")])
    images, cats = set(split.image_ids), set(split.category_ids)
    # Each mask passes the engine's gate here, against its image's size: a malformed RLE or
    # polygon is refused with its code and JSON path before anything is stored or queued.
    sizes = {int(img["id"]): (img.get("height"), img.get("width")) for img in split.images or [] if "id" in img}
    # The masks are checked in bulk first (the compressed strings in one kernel call); the
    # loop below reports each detection's issues in order, its mask's last.
    known_sizes = {}
    for i, det in enumerate(results):
        image_id = det.get("image_id") if isinstance(det, dict) else None
        h, w = sizes.get(image_id, (None, None)) if isinstance(image_id, int) and not isinstance(image_id, bool) and image_id in images else (None, None)
        if isinstance(h, int) and isinstance(w, int):
            known_sizes[i] = (det.get("segmentation"), h, w)
    order = list(known_sizes)
    mask_issues = {order[k]: issue for k, issue in gate.segmentation_issues(list(known_sizes.values()), lambda k: f"[{order[k]}].segmentation").items()}
    errors: list[dict[str, str]] = []
    outside = False
    for i, det in enumerate(results):
        if len(errors) >= MAX_ERRORS_SHOWN:
            break
        if not isinstance(det, dict):
            errors.append(field_error(f"[{i}]", "expected an object", "invalid_type"))
            continue
        image_id, cat_id, score = det.get("image_id"), det.get("category_id"), det.get("score")
        if not isinstance(image_id, int) or isinstance(image_id, bool) or image_id not in images:
            errors.append(field_error(f"[{i}].image_id", "image is not in the listing's public evaluation split", "not_in_split"))
            outside = True
        if not isinstance(cat_id, int) or isinstance(cat_id, bool) or cat_id not in cats:
            errors.append(field_error(f"[{i}].category_id", "unknown category for this listing", "not_in_split"))
            outside = True
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
            errors.append(field_error(f"[{i}].score", "a finite number is required", "invalid"))
        seg = det.get("segmentation")
        if i in known_sizes:
            if i in mask_issues:
                errors.append(mask_issues[i].to_dict())
        elif not (isinstance(seg, dict) and "counts" in seg and "size" in seg) and not (isinstance(seg, list) and seg):
            errors.append(field_error(f"[{i}].segmentation", "an RLE object or a polygon list is required", "invalid"))
    if errors and outside:
        raise InvalidInput("Some results do not fit the listing's public evaluation split.", code=QualityErrorCode.RESULTS_OUTSIDE_SPLIT, details=errors)
    if errors:
        raise InvalidInput("Some results are malformed.", code=QualityErrorCode.INVALID_RESULTS, details=errors)
    return len(results)


# ``evaluation_create(results=UNPARSED, payload=...)``: the body's JSON was not parsed
# (the compiled reader read it: see ``results_read_compiled``); parse it only if needed.
UNPARSED = object()


def results_read_compiled(payload: bytes) -> dict | None:
    """What the engine's compiled results reader reads of a results body (ids, scores,
    sizes and where each counts string lies, as arrays), or None when it declines: anything
    unusual (polygons, duplicate keys, non-finite or huge numbers, invalid JSON). It never
    reads a body that ``json`` refuses, so a body it reads is valid JSON."""
    kernels = native.kernels()
    return None if kernels is None else kernels.parse_results(payload)


def _accepted_compiled(payload: bytes, *, split: EvaluationSplit, read: dict | None = None) -> int | None:
    """The number of detections when the compiled reader reads the whole body and every
    detection passes each check ``_validate_results`` makes (image and category in the
    split, a finite score, an RLE of the image's size whose counts string the gate
    accepts), so that path would accept it too; None otherwise (that path then parses the
    body and locates the errors). No Python object per detection. ``read``: what
    :func:`results_read_compiled` already read of ``payload``."""
    r = read if read is not None else results_read_compiled(payload)
    if r is None or r["n_seg"] != r["n"] or not 0 < r["n"] <= MAX_DETECTIONS:
        return None
    n = r["n"]
    image_ids = np.frombuffer(r["image_id"], dtype=np.int64)
    sizes = {int(img["id"]): (img.get("height"), img.get("width")) for img in split.images or [] if "id" in img}
    known = sorted(i for i in set(split.image_ids) if type(i) is int and i in sizes and all(type(v) is int for v in sizes[i]))
    ids = np.array(known, dtype=np.int64)
    if not ids.size or not np.isin(image_ids, ids).all():
        return None
    cats = np.array([c for c in split.category_ids if type(c) is int], dtype=np.int64)
    if not np.isin(np.frombuffer(r["category_id"], dtype=np.int64), cats).all():
        return None
    if not np.isfinite(np.frombuffer(r["score"], dtype=np.float64)).all():
        return None
    at = np.searchsorted(ids, image_ids)
    heights = np.array([sizes[i][0] for i in known], dtype=np.int64)[at]
    widths = np.array([sizes[i][1] for i in known], dtype=np.int64)[at]
    size = np.frombuffer(r["size"], dtype=np.int64).reshape(n, 2)
    if not (np.array_equal(size[:, 0], heights) and np.array_equal(size[:, 1], widths)):
        return None
    start = np.frombuffer(r["counts_start"], dtype=np.int64)
    stop = np.frombuffer(r["counts_stop"], dtype=np.int64)
    if gate.string_verdicts(payload, start, stop, heights, widths, escaped=True).first_bad() >= 0:
        return None
    return n


def _organization_budget_check(*, organization) -> None:
    """A buyer organization's evaluations in the last hour stay within
    ``QUALITY_EVALUATION_ORG_PER_HOUR`` (default 100), whichever members post them and on
    whichever API node: counted in the database under the organization's row lock, so two
    concurrent posts cannot both take the last one."""
    limit = int(getattr(settings, "QUALITY_EVALUATION_ORG_PER_HOUR", 100))
    organization_id = organization.pk
    list(type(organization)._default_manager.select_for_update().filter(pk=organization_id).values_list("pk", flat=True))
    now = timezone.now()
    recent = BuyerEvaluation.objects.filter(organization_id=organization_id, created_at__gte=now - timedelta(hours=1))
    if recent.count() < limit:
        return
    oldest = recent.order_by("created_at").values_list("created_at", flat=True).first()
    retry_after = max(1, math.ceil((oldest + timedelta(hours=1) - now).total_seconds()))
    raise TooManyRequests(
        f"Your organization has run {limit} evaluations in the last hour; try again in {retry_after} s.",
        retry_after=retry_after,
        code=QualityErrorCode.ORGANIZATION_EVALUATION_LIMIT,
        details=[field_error("organization", f"at most {limit} evaluations per hour per buyer organization", "limit")],
    )


def _organization_active_check(*, organization) -> None:
    """At most ``QUALITY_EVALUATION_ORG_ACTIVE`` evaluations of one buyer organization queued
    or running at once (under the row lock the hourly budget takes)."""
    active = settings.QUALITY_EVALUATION_ORG_ACTIVE
    if BuyerEvaluation.objects.filter(organization_id=organization.pk, state__in=[EvaluationState.QUEUED, EvaluationState.RUNNING]).count() >= active:
        raise TooManyRequests(
            f"Your organization has {active} evaluations queued or running; wait for one to finish.", code=QualityErrorCode.ORGANIZATION_EVALUATIONS_ACTIVE,
            retry_after=30, details=[field_error("organization", f"at most {active} evaluations at once per organization", "active")],
        )


@transaction.atomic
def evaluation_create(
    *, user, slug: str, results: Any, payload: bytes | None = None, read: dict | None = None, organization_id: int | None = None
) -> BuyerEvaluation:
    """Store a buyer's results for the listing's public split and enqueue the evaluation.

    The caller must be a member of a buyer organization (``organization_id`` picks one when
    the user has several). The results are stored in object storage, not in the database:
    ``payload``, the JSON text ``results`` were parsed from (a request's body), stored as
    it came, else ``results`` serialized. The worker reads the stored text as the parser
    read it (duplicate keys: the last; the compiled reader hands any file with one to
    orjson), so writing the body out again would only cost time (0.8 s at 100,000 masks).
    With ``results=UNPARSED`` the body (valid JSON: the compiled reader read it) is checked
    by the compiled reader first (``read``: what it already read of ``payload``) and
    parsed only when that check does not accept it.
    """
    orgs = buyer_organizations(user=user)
    org = (orgs.filter(pk=organization_id) if organization_id else orgs.order_by("pk")).first()
    if org is None:
        raise Forbidden("Only members of a buyer organization can evaluate a listing.", code=QualityErrorCode.NOT_A_BUYER)
    version = version_published_for_slug(slug=slug)
    split = evaluation_split_get(version=version)
    n = _accepted_compiled(payload, split=split, read=read) if results is UNPARSED and payload is not None else None
    if n is None:
        if results is UNPARSED:
            results = json.loads(payload)
        n = _validate_results(results, split=split)
    _organization_budget_check(organization=org)
    _organization_active_check(organization=org)
    if payload is None:
        payload = json.dumps(results, separators=(",", ":")).encode()
    sha = sha256_hex(payload)
    key = f"evaluations/{version.pk}/{org.pk}/{uuid.uuid4().hex}/results.json"
    get_storage().put_bytes(key, payload, content_type="application/json")
    try:
        evaluation = BuyerEvaluation.objects.create(
            dataset=version.dataset, version=version, organization=org, user=user, results_key=key, results_sha256=sha, n_detections=n
        )
    except Exception:
        _delete_objects([key])
        raise
    soft, hard = settings.QUALITY_EVALUATION_TIME_LIMITS
    transaction.on_commit(lambda: evaluation_run_task.apply_async(args=[evaluation.pk], soft_time_limit=soft, time_limit=hard))
    return evaluation


def _ap_report(result: Any, *, category_names: dict[int, str]) -> dict[str, Any]:
    cat_ids = [int(c) for c in result.params.cat_ids]
    figs = ap_figures(np.asarray(result.precision), result.params.iou_thrs, cat_ids)
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    return {
        "stats": dict(zip(names, [float(s) for s in result.stats], strict=True)),
        "stats_list": [float(s) for s in result.stats],
        "per_category_ap": [
            {"category_id": c, "name": category_names.get(c, str(c)), "ap": figs["per_category_ap"].get(str(c))} for c in cat_ids
        ],
        "engine_version": result.engine_version,
    }


def evaluation_run(*, evaluation_id: int, device: str | None = None) -> BuyerEvaluation:
    """Score a buyer evaluation with the engine's COCO evaluator. Idempotent: a finished
    evaluation is returned as is; a ``running`` one (a worker died) is run again."""
    with transaction.atomic():
        evaluation = BuyerEvaluation.objects.select_for_update().select_related("version").filter(pk=evaluation_id).first()
        if evaluation is None:
            raise NotFound("Evaluation not found.", code=QualityErrorCode.EVALUATION_NOT_FOUND)
        if evaluation.state in (EvaluationState.DONE, EvaluationState.FAILED):
            return evaluation
        # Found running: its last attempt never finished (the worker died, the broker sent
        # it again). That counts; past PIPELINE_MAX_RETRIES + 1 attempts it ends failed
        # instead of taking down one worker after another.
        if evaluation.state == EvaluationState.RUNNING and evaluation.attempts >= settings.PIPELINE_MAX_RETRIES + 1:
            evaluation_fail(
                evaluation_id=evaluation.pk, code=QualityErrorCode.EVALUATION_WORKER_LOST,
                message=f"The worker running this evaluation was lost on each of its {evaluation.attempts} attempts.",
            )
            evaluation.refresh_from_db()
            return evaluation
        evaluation.state, evaluation.started_at = EvaluationState.RUNNING, timezone.now()
        evaluation.attempts += 1
        evaluation.save(update_fields=["state", "started_at", "attempts"])

    device = device or settings.QUALITY_DEVICE
    started = time.monotonic()
    version = evaluation.version
    split = evaluation_split_get(version=version)
    storage = get_storage()
    try:
        params = EvalParams(img_ids=list(split.image_ids), cat_ids=list(split.category_ids))
        with tempfile.TemporaryDirectory(prefix="evaluation-") as tmp:
            # The version's mask cache (compact arrays and the masks as compressed strings)
            # and the buyer's results as a file for the engine's compiled reader: neither
            # the annotation JSON nor the results become Python objects per annotation.
            reference_path = version_evaluation_reference(version=version, dest=Path(tmp) / "reference.npz")
            if reference_path is None:
                raise NotFound("This listing has no evaluation split.", code=QualityErrorCode.NO_EVALUATION_SPLIT)
            reference = ReferenceCache.load(reference_path)
            names = {int(c["id"]): str(c.get("name", c["id"])) for c in json.loads(reference.categories_json)}
            results_path = Path(tmp) / "results.json"
            with storage.open(evaluation.results_key) as src, open(results_path, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            result = evaluate(reference, str(results_path), params=params, device=device)
        report = _ap_report(result, category_names=names)
        report |= {"split": {"rule": split.rule, "images": len(split.image_ids)}, "n_detections": evaluation.n_detections}
        state, error = EvaluationState.DONE, {}
    except EngineInputError as exc:
        state, report = EvaluationState.FAILED, {}
        error = {"code": exc.code, "message": exc.message, "details": [field_error(exc.location or "", exc.message, exc.code)]}
    BuyerEvaluation.objects.filter(pk=evaluation.pk).update(
        state=state, report=report, error=error, device=device, engine_version=ENGINE_VERSION,
        seconds=round(time.monotonic() - started, 3), finished_at=timezone.now(),
    )
    evaluation.refresh_from_db()
    return evaluation


def evaluation_fail(*, evaluation_id: int, message: str, code: str = "evaluation_failed") -> None:
    """Mark an evaluation failed after its task gave up (so no job is stuck in running)."""
    BuyerEvaluation.objects.filter(pk=evaluation_id).exclude(state=EvaluationState.DONE).update(
        state=EvaluationState.FAILED, error={"code": code, "message": message, "details": []}, finished_at=timezone.now()
    )
