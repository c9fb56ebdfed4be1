"""One adapter per report kind: what the kind reads from a version, and how the engine
turns that into a full report and its headline figures.

A new report kind is a new :class:`ReportKindAdapter` subclass registered in ``ADAPTERS``
(and a ``ReportKind`` value); ``report_compute`` needs no change. The adapters never
compute a metric themselves: figures come from ``quality.engine`` only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from datasets.models import DatasetVersion, FileRole
from datasets.selectors import (
    version_annotation_files,
    version_annotations,
    version_annotations_on,
    version_annotations_streamed,
    version_audit_clips,
    version_audit_reference,
    version_audit_sample,
    version_coco,
    version_files,
    version_image_files,
    version_png_index,
    version_reference_is_panoptic,
    version_video_file,
    version_video_files,
    version_video_subset,
)
from marketplace.core.storage import get_storage
from quality.engine import plots
from quality.engine.agreement import agreement_compare
from quality.engine.audit import audit_compare
from quality.engine.intrinsic import intrinsic_checks, intrinsic_checks_streamed
from quality.engine.panoptic import merged_instances, panoptic_quality
from quality.engine.temporal import is_ytvis, temporal_consistency
from quality.engine.video_audit import video_audit_compare
from quality.engine.ytvis import ytvis_as_coco
from quality.figures import MEASURED, VERIFIED
from quality.figures import figure as figure_of
from quality.models import ReportKind

# Bootstrap draws for the headline intervals; AP intervals cost one evaluation per draw,
# so they get fewer. Both are part of the inputs checksum.
N_BOOT = 1000
N_BOOT_AP = 200


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ReportInputs:
    """What one report kind needs: parsed inputs, their digests, and the engine parameters."""

    data: dict[str, Any] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    # What the figures computed from these inputs are: measured from the seller's data,
    # until the auditor's reference is among the inputs (then verified).
    status: str = MEASURED
    missing: str | None = None  # why the kind cannot be computed yet

    def checksum(self) -> str:
        return sha256_hex(canonical_json({"inputs": sorted(self.digests.items()), "params": self.params}))

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED

    def add_role(self, *, version: DatasetVersion, role: str, name: str | None = None) -> dict | None:
        """Parse the version's file of ``role`` into ``data[name or role]`` and record its digest."""
        # the annotations of every split, as one set (image ids are unique across splits)
        parsed = version_annotations(version=version) if role == FileRole.ANNOTATIONS else version_coco(version=version, role=role)
        if parsed is not None:
            self.data[name or role] = parsed
            self.digests[name or role] = role_digest(version=version, role=role, parsed=parsed)
        return parsed

    def add_annotations_on(self, *, version: DatasetVersion, image_ids: list[int]) -> dict | None:
        """The seller's annotations of ``image_ids`` only (streamed from the files), under
        the same digest as the whole set: the files' checksums."""
        parsed = version_annotations_on(version=version, image_ids=image_ids)
        if parsed is not None:
            self.data[FileRole.ANNOTATIONS] = parsed
            self.digests[FileRole.ANNOTATIONS] = role_digest(version=version, role=FileRole.ANNOTATIONS, parsed=parsed)
        return parsed

    def add_reference(self, *, version: DatasetVersion, reference: dict) -> None:
        """The auditor's reference: figures computed against it are ``verified``."""
        self.data["reference"] = reference
        self.digests["audit_reference"] = role_digest(version=version, role=FileRole.REFERENCE, parsed=reference)
        self.status = VERIFIED


def role_digest(*, version: DatasetVersion, role: str, parsed: Any) -> str:
    """The sha256 of a role's file(s) as ingest recorded them, else of the parsed content."""
    shas = sorted(version_files(version=version, role=role).values_list("sha256", flat=True))
    if shas:
        return sha256_hex(",".join(shas).encode())
    return sha256_hex(canonical_json(parsed))


def figure(report: Any, key: str, *, value_key: str | None = None, n: int, status: str) -> dict[str, Any] | None:
    """A headline figure of an engine report as every response shows it: value, 95 %
    interval (when the report has one), sample size, and its kind (``status``)."""
    ci = (getattr(report, "intervals", {}) or {}).get(value_key or key)
    return figure_of(getattr(report, value_key or key, None), status=status, n=n, ci=[ci.low, ci.high] if ci is not None else None)


class ReportKindAdapter(ABC):
    """Base of the adapters. ``gather`` reads the version (no engine work); ``run`` calls the
    engine on what ``gather`` found and writes the plots; it is only called when
    ``inputs.missing`` is None."""

    kind: ClassVar[ReportKind]

    @abstractmethod
    def gather(self, *, version: DatasetVersion) -> ReportInputs: ...

    @abstractmethod
    def run(self, *, version: DatasetVersion, inputs: ReportInputs, device: str, plots_dir: Path) -> tuple[dict, dict]: ...

    def new_inputs(self, *, version: DatasetVersion) -> ReportInputs:
        return ReportInputs(params={"kind": self.kind.value, "seed": version.pk})


class IntrinsicAdapter(ReportKindAdapter):
    """Checks of the seller's own masks that need no reference (a video-only version's
    YouTube-VIS tracks frame by frame)."""

    kind = ReportKind.INTRINSIC

    def gather(self, *, version):
        inputs = self.new_inputs(version=version)
        if version_annotation_files(version=version):
            # the seller's COCO files are streamed when the report runs, never parsed whole;
            # their checksums are the inputs' key
            inputs.digests[FileRole.ANNOTATIONS] = role_digest(version=version, role=FileRole.ANNOTATIONS, parsed=None)
        elif inputs.add_role(version=version, role=FileRole.VIDEO, name="annotations") is None:
            inputs.missing = "no annotations file"
        return inputs

    def run(self, *, version, inputs, device, plots_dir):
        annotations = inputs.data.get("annotations")
        if annotations is None:
            images, categories, stream = version_annotations_streamed(version=version)
            report = intrinsic_checks_streamed(images=images, categories=categories, annotations=stream)
        else:
            # YouTube-VIS tracks are checked frame by frame, as COCO frames
            report = intrinsic_checks(ytvis_as_coco(annotations) if is_ytvis(annotations) else annotations)
        plots.write_intrinsic_plots(report, plots_dir)
        findings = {f.code: figure_of(f.count, status=inputs.status, n=report.n_annotations) for f in report.findings}
        summary = {"n_images": report.n_images, "n_annotations": report.n_annotations, "findings": findings}
        return report.to_dict(), summary


class AuditAdapter(ReportKindAdapter):
    """The seller's masks against the auditor's reference on the drawn sample: verified.
    A video version's sample is clips and its reference tracks (:mod:`quality.engine.video_audit`)."""

    kind = ReportKind.AUDIT

    def gather(self, *, version):
        if version_video_file(version=version) is not None:
            return self._gather_video(version=version)
        inputs = self.new_inputs(version=version)
        inputs.params |= {"n_boot": N_BOOT, "n_boot_ap": N_BOOT_AP}
        if not version_annotation_files(version=version):
            inputs.missing = "no annotations file"
            return inputs
        # the files' checksums, whether or not the reference is there yet
        inputs.digests[FileRole.ANNOTATIONS] = role_digest(version=version, role=FileRole.ANNOTATIONS, parsed=None)
        reference = version_audit_reference(version=version)
        if reference is None:
            inputs.missing = "no reference annotations (audit sample not annotated yet)"
            return inputs
        if version_reference_is_panoptic(version=version):
            inputs.missing = "the reference is panoptic (the panoptic report uses it)"
            return inputs
        inputs.add_reference(version=version, reference=reference)
        sample = sorted(int(i) for i in version_audit_sample(version=version))
        ref_ids = {int(img["id"]) for img in reference.get("images", [])}
        image_ids = [i for i in sample if i in ref_ids] or sorted(ref_ids)
        inputs.data["image_ids"] = image_ids
        inputs.params["image_ids_sha256"] = sha256_hex(canonical_json(image_ids))
        # The audit compares the sample's images only: the seller's files are streamed for
        # them, never parsed whole.
        inputs.add_annotations_on(version=version, image_ids=image_ids)
        return inputs

    def _gather_video(self, *, version):
        """A video version: the seller's tracks against the auditor's reference tracks on
        the drawn clips."""
        inputs = self.new_inputs(version=version)
        inputs.params |= {"n_boot": N_BOOT, "video": True}
        files = version_video_files(version=version)
        reference = version_audit_reference(version=version)
        if reference is None:
            inputs.missing = "no reference tracks (audit clips not annotated yet)"
            return inputs
        inputs.add_reference(version=version, reference=reference)
        clips = {int(c["video_id"]): list(c["frame_indices"]) for c in version_audit_clips(version=version)}
        inputs.data["clips"] = clips
        inputs.params["clips_sha256"] = sha256_hex(canonical_json(sorted(clips.items())))
        # only the sampled videos of the seller's files are read (streamed)
        videos = set(clips) or {int(v["id"]) for v in reference.get("videos", []) if isinstance(v, dict) and "id" in v}
        subject = version_video_subset(version=version, video_ids=videos)
        inputs.data["annotations"] = subject
        shas = sorted(dfile.sha256 for dfile, _fmt in files)
        inputs.digests["annotations"] = sha256_hex(",".join(shas).encode()) if all(shas) else sha256_hex(canonical_json(subject))
        return inputs

    def _run_video(self, *, version, inputs, plots_dir):
        d, status = inputs.data, inputs.status
        report = video_audit_compare(d["reference"], d["annotations"], clips=d["clips"] or None, seed=version.pk, n_boot=N_BOOT)
        report.verified = inputs.verified
        # Overlays of the best, median and worst clip's middle sampled frame, on the frame image.
        clips = d["clips"] or {int(v["id"]): list(range(len(v.get("file_names") or []) or int(v.get("length", 0)))) for v in d["reference"].get("videos", [])}
        chosen = plots.video_overlay_frames(report.per_clip, clips)
        frames = fetch_frames(version=version, reference=d["reference"], frames=[(vid, f) for _rank, vid, f, _iou in chosen], dest=plots_dir.parent / "frames")
        plots.write_video_audit_plots(report, d["reference"], plots_dir, seller=d["annotations"], clips=clips, frame_paths=frames)
        n_tracks = report.n_reference_tracks
        summary = {
            key: fig
            for key in ("mask_iou", "boundary_iou", "instance_recall", "instance_precision")
            if (fig := figure(report, key, n=report.n_matched if key in ("mask_iou", "boundary_iou") else report.n_videos, status=status))
        }
        summary |= {
            key: fig
            for key in ("id_switches", "fragmentations")
            if (fig := figure_of(getattr(report, key), status=status, n=n_tracks))
        }
        if (fig := figure_of(report.video_ap, status=status, n=report.n_videos)) is not None:
            summary["video_ap"] = fig
        summary |= {"tier": report.tier, "verified": inputs.verified, "n_videos": report.n_videos, "n_frames": report.n_frames}
        # Video AP per class (the YouTube-VIS evaluation's), shown per class on the listing.
        if report.ytvis is not None:
            summary["per_class_ap"] = {str(c): (None if ap is None else float(ap)) for c, ap in report.ytvis.per_category_ap.items()}
        return report.to_dict(), summary

    def run(self, *, version, inputs, device, plots_dir):
        if inputs.params.get("video"):
            return self._run_video(version=version, inputs=inputs, plots_dir=plots_dir)
        d, status = inputs.data, inputs.status
        report = audit_compare(d["reference"], d["annotations"], seed=version.pk, n_boot=N_BOOT, n_boot_ap=N_BOOT_AP, image_ids=d["image_ids"], device=device)
        report.verified = inputs.verified
        # Overlays of the sample's best, median and worst image, drawn on the images themselves.
        chosen = [image_id for _rank, image_id, _iou in plots.overlay_choices(report.per_image)]
        images = fetch_images(version=version, coco=d["annotations"], image_ids=chosen, dest=plots_dir.parent / "images")
        plots.write_audit_plots(report, d["reference"], d["annotations"], plots_dir, image_paths=images)
        summary = {
            key: fig
            for key in ("mask_iou", "boundary_iou", "instance_recall", "instance_precision")
            if (fig := figure(report, key, n=report.n_matched if key in ("mask_iou", "boundary_iou") else report.n_images, status=status))
        }
        summary |= {key: fig for key in ("ap", "ap50", "ap75", "ap95") if (fig := figure(report, key, n=report.n_images, status=status))}
        summary |= {"tier": report.tier, "verified": inputs.verified, "n_images": report.n_images}
        # AP per class (category id -> AP, None for a class without reference instances):
        # the listing shows it per class next to the class's instance count.
        summary["per_class_ap"] = {str(c): (None if ap is None else float(ap)) for c, ap in report.per_category_ap.items()}
        return report.to_dict(), summary


class AgreementAdapter(ReportKindAdapter):
    """The seller's second annotation pass against the first on the same images."""

    kind = ReportKind.AGREEMENT

    def gather(self, *, version):
        inputs = self.new_inputs(version=version)
        inputs.params |= {"n_boot": N_BOOT}
        first = inputs.add_role(version=version, role=FileRole.ANNOTATIONS)
        second = inputs.add_role(version=version, role=FileRole.SECOND_PASS)
        if first is None or second is None:
            inputs.missing = "no second annotation pass"
        return inputs

    def run(self, *, version, inputs, device, plots_dir):
        d = inputs.data
        report = agreement_compare(d["annotations"], d["second_pass"], seed=version.pk, n_boot=N_BOOT)
        first_ids = sorted({int(a["image_id"]) for a in d["annotations"].get("annotations", [])} | {int(a["image_id"]) for a in d["second_pass"].get("annotations", [])})[:4]
        images = fetch_images(version=version, coco=d["annotations"], image_ids=first_ids, dest=plots_dir.parent / "images")
        plots.write_agreement_plots(report, d["annotations"], d["second_pass"], plots_dir, image_paths=images)
        n_instances = report.n_first + report.n_second
        figures = {
            "agreement": figure(report, "agreement", value_key="mean_iou", n=report.n_matched, status=inputs.status),
            "unmatched_rate": figure(report, "unmatched_rate", n=n_instances, status=inputs.status),
            "kappa": figure(report, "kappa", n=report.n_kappa_pairs, status=inputs.status),
        }
        summary: dict[str, Any] = {key: fig for key, fig in figures.items() if fig is not None}
        summary |= {"inconsistent_labeling": report.inconsistent_labeling, "threshold": report.threshold}
        return report.to_dict(), summary


class TemporalAdapter(ReportKindAdapter):
    """Frame-to-frame stability of the seller's own tracks: measured from the seller's data
    alone (identity errors against the auditor's reference tracks are the audit's)."""

    kind = ReportKind.TEMPORAL

    def gather(self, *, version):
        inputs = self.new_inputs(version=version)
        subject = inputs.add_role(version=version, role=FileRole.VIDEO, name="subject")
        if subject is None:
            subject = inputs.add_role(version=version, role=FileRole.ANNOTATIONS, name="subject")
        if subject is None:
            inputs.missing = "no video annotations"
        return inputs

    def run(self, *, version, inputs, device, plots_dir):
        report = temporal_consistency(inputs.data["subject"])
        plots.write_temporal_plots(report, plots_dir)
        summary: dict[str, Any] = {
            key: fig for key in ("temporal_iou",) if (fig := figure(report, key, n=report.n_frame_pairs, status=inputs.status))
        }
        summary |= {"n_videos": report.n_videos, "n_tracks": report.n_tracks, "tracks_with_gaps": report.tracks_with_gaps}
        return report.to_dict(), summary


class PanopticAdapter(ReportKindAdapter):
    """The seller's panoptic segments: the merged-instances check over all of them (measured
    from the seller's data alone) and, once the auditor's panoptic reference of the sample
    is there, PQ/SQ/RQ against it with bootstrap intervals (verified)."""

    kind = ReportKind.PANOPTIC

    def gather(self, *, version):
        inputs = self.new_inputs(version=version)
        inputs.params |= {"n_boot": N_BOOT}
        if inputs.add_role(version=version, role=FileRole.PANOPTIC, name="pred") is None:
            inputs.missing = "no panoptic annotations"
            return inputs
        if version_reference_is_panoptic(version=version):
            reference = version_audit_reference(version=version)
            if reference is not None:
                inputs.add_reference(version=version, reference=reference)
        return inputs

    def run(self, *, version, inputs, device, plots_dir):
        d = inputs.data
        work = plots_dir.parent
        pred_pngs = StoragePngs(index=version_png_index(version=version, role=FileRole.PANOPTIC), dest=work / "pred")
        merged = merged_instances(d["pred"], png_files=pred_pngs)
        summary: dict[str, Any] = {
            "merged_instances": figure_of(merged.n_flagged, status=MEASURED, n=merged.n_segments),
            "merged_instances_examples": [e.to_dict() for e in merged.examples[:5]],
        }
        full: dict[str, Any] = {"merged_instances": merged.to_dict(), "pq": None}
        if "reference" in d:
            gt_pngs = StoragePngs(index=version_png_index(version=version, role=FileRole.REFERENCE), dest=work / "gt")
            report = panoptic_quality(d["reference"], d["pred"], gt_files=gt_pngs, pred_files=pred_pngs, n_boot=N_BOOT, seed=version.pk)
            report.verified = inputs.verified
            plots.write_panoptic_plots(report, plots_dir)
            for group in ("all", "things", "stuff"):
                figures = getattr(report, group)
                if not figures.n:
                    continue
                for name in ("pq", "sq", "rq"):
                    ci = report.intervals.get(f"{group}_{name}")
                    key = name if group == "all" else f"{name}_{group}"
                    summary[key] = figure_of(getattr(figures, name), status=inputs.status, n=report.n_images, ci=[ci.low, ci.high] if ci else None)
            summary |= {"n_images": report.n_images, "verified": inputs.verified}
            full["pq"] = report.to_dict()
        return full, {k: v for k, v in summary.items() if v is not None}


def fetch_images(*, version: DatasetVersion, coco: dict, image_ids: list[int], dest: Path) -> dict[int, Path]:
    """The version's image files of ``image_ids`` (named by the annotations' ``file_name``)
    copied into ``dest`` under names of our own (``<image id><suffix>``: a file name from the
    seller never becomes a local path); ids without a file are absent."""
    wanted = set(image_ids)
    names = {int(img["id"]): str(img.get("file_name") or "") for img in coco.get("images", []) if int(img["id"]) in wanted}
    files = version_image_files(version=version, file_names=names.values())
    storage = get_storage()
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[int, Path] = {}
    for image_id, name in sorted(names.items()):
        row = files.get(name)
        if row is None:
            continue
        local = dest / f"{image_id}{Path(row.path).suffix.lower()[:8]}"
        local.write_bytes(storage.read_bytes(row.storage_key))
        out[image_id] = local
    return out


def fetch_frames(*, version: DatasetVersion, reference: dict, frames: list[tuple[int, int]], dest: Path) -> dict[tuple[int, int], Path]:
    """The frame images of ``frames`` (video id, frame index), named by the drawn clips'
    ``file_names`` (else the reference's), copied into ``dest`` under names of our own;
    frames without a file are absent."""
    names_of = {int(c["video_id"]): list(c.get("file_names") or []) for c in version_audit_clips(version=version)}
    for video in reference.get("videos", []):
        names_of.setdefault(int(video["id"]), list(video.get("file_names") or []))
    wanted = {(vid, f): names_of[vid][f] for vid, f in frames if vid in names_of and 0 <= f < len(names_of[vid])}
    files = version_image_files(version=version, file_names=wanted.values())
    storage = get_storage()
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[tuple[int, int], Path] = {}
    for (vid, f), name in sorted(wanted.items()):
        row = files.get(name)
        if row is None:
            continue
        local = dest / f"{vid}-{f}{Path(row.path).suffix.lower()[:8]}"
        local.write_bytes(storage.read_bytes(row.storage_key))
        out[(vid, f)] = local
    return out


class StoragePngs(Mapping):
    """PNG files of the version's file index, fetched one at a time as the engine asks for
    them by the name a panoptic JSON gives (looked up in ``index``, by exact name, else by
    base name); the previous one is removed, so disk holds one PNG per source."""

    def __init__(self, *, index: dict[str, Any], dest: Path) -> None:
        self.index, self.dest = index, dest
        self.dest.mkdir(parents=True, exist_ok=True)
        self._current: Path | None = None
        self._count = 0

    def _row(self, name: str):
        return self.index.get(name) or self.index.get(name.rsplit("/", 1)[-1])

    def __getitem__(self, name: str) -> Path:
        row = self._row(name) if isinstance(name, str) else None
        if row is None:
            raise KeyError(name)
        if self._current is not None:
            self._current.unlink(missing_ok=True)
        self._count += 1
        self._current = self.dest / f"{self._count}.png"  # our own name, never the JSON's
        with get_storage().open(row.storage_key) as src, open(self._current, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return self._current

    def __iter__(self):
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


ADAPTERS: dict[str, ReportKindAdapter] = {
    adapter.kind.value: adapter for adapter in (IntrinsicAdapter(), AuditAdapter(), AgreementAdapter(), TemporalAdapter(), PanopticAdapter())
}
