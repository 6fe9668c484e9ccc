//! The detector: one scan compares the desired objects with a live snapshot, counts
//! the findings, pages on critical ones, and — with `drift_pr_bot_enabled` — opens one
//! remediation proposal per drift (spec §3.4, §5.4).

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_core::{
    Alert, AlertSeverity, ChangeProposer, Clock, DriftSource, Flag, FlagStore, LiveObject, Pager,
    ProposalRef, TenantId,
};
use time::OffsetDateTime;

use crate::DriftError;
use crate::desired::DesiredObject;
use crate::diff::{DiffRules, Finding, ObjectId, Severity, find_drift};
use crate::propose::proposal_for;

/// The counter of findings, labelled `severity` (spec §6).
pub const FINDINGS_METRIC: &str = mc_core::telemetry::DRIFT_FINDINGS.name;
/// The gauge of findings open after the last scan, labelled `severity` (for the
/// "drift > 0 critical" alert).
pub const OPEN_METRIC: &str = mc_core::telemetry::DRIFT_OPEN.name;

/// What one scan found and did.
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// When the scan ran.
    pub at: OffsetDateTime,
    /// Objects compared.
    pub compared: usize,
    /// The findings, by object.
    pub findings: Vec<Finding>,
    /// Findings that were not open at this detector's previous scan (new drift, or
    /// drift that came back); counted in `mc_drift_findings_total`.
    pub new_findings: usize,
    /// Pages sent (critical findings).
    pub paged: usize,
    /// Proposals opened by this scan.
    pub proposed: Vec<ProposalRef>,
    /// Findings that already had an open proposal (not opened twice).
    pub already_proposed: usize,
    /// Whether the PR bot was off for the tenant (no proposals).
    pub pr_bot_off: bool,
}

/// The drift detector of one environment.
pub struct DriftDetector {
    tenant: TenantId,
    env: String,
    source: Arc<dyn DriftSource>,
    pager: Arc<dyn Pager>,
    proposer: Arc<dyn ChangeProposer>,
    flags: Arc<dyn FlagStore>,
    clock: Arc<dyn Clock>,
    rules: DiffRules,
    /// Fingerprints open after the previous scan.
    open: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl std::fmt::Debug for DriftDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftDetector")
            .field("tenant", &self.tenant)
            .field("env", &self.env)
            .field("source", &self.source.name())
            .finish_non_exhaustive()
    }
}

/// The stores a detector works through.
pub struct DetectorParts {
    /// The live state.
    pub source: Arc<dyn DriftSource>,
    /// Where critical findings page.
    pub pager: Arc<dyn Pager>,
    /// Where proposals open (GitHub pull requests in production).
    pub proposer: Arc<dyn ChangeProposer>,
    /// The tenant's flags (`drift_pr_bot_enabled`).
    pub flags: Arc<dyn FlagStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl DriftDetector {
    /// A detector for `tenant`'s environment `env`.
    pub fn new(
        tenant: TenantId,
        env: impl Into<String>,
        parts: DetectorParts,
        rules: DiffRules,
    ) -> Self {
        DriftDetector {
            tenant,
            env: env.into(),
            source: parts.source,
            pager: parts.pager,
            proposer: parts.proposer,
            flags: parts.flags,
            clock: parts.clock,
            rules,
            open: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// One scan. `files` holds the repository text of the desired objects' files, so
    /// proposals can patch them.
    ///
    /// # Errors
    /// [`DriftError::Store`] when the source, the pager, the flag store or the
    /// proposer fails (findings are still counted before a pager or proposer error).
    pub async fn scan(
        &self,
        desired: &[DesiredObject],
        files: &BTreeMap<String, String>,
    ) -> Result<ScanReport, DriftError> {
        let at = self.clock.now();
        let _span = tracing::info_span!("drift.scan", tenant = %self.tenant, env = %self.env, source = self.source.name()).entered();
        let live = self.source.snapshot().await?;
        let findings = find_drift(self.source.name(), desired, &live, &self.rules);
        let mut open = [0u64; 2];
        let mut new_findings = 0;
        {
            let mut was_open = self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for f in &findings {
                if !was_open.contains(&f.fingerprint) {
                    new_findings += 1;
                    metrics::counter!(FINDINGS_METRIC, "severity" => f.severity.as_str())
                        .increment(1);
                }
                open[usize::from(f.severity == Severity::Warning)] += 1;
            }
            *was_open = findings.iter().map(|f| f.fingerprint.clone()).collect();
        }
        metrics::gauge!(OPEN_METRIC, "severity" => "critical").set(open[0] as f64);
        metrics::gauge!(OPEN_METRIC, "severity" => "warning").set(open[1] as f64);
        metrics::gauge!(mc_core::telemetry::DRIFT_LAST_SCAN.name).set(at.unix_timestamp() as f64);
        let mut report = ScanReport {
            at,
            compared: desired.len(),
            findings,
            new_findings,
            paged: 0,
            proposed: Vec::new(),
            already_proposed: 0,
            pr_bot_off: false,
        };
        for f in report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Critical)
        {
            self.pager
                .page(Alert {
                    dedup_key: format!("drift:{}", f.fingerprint),
                    severity: AlertSeverity::Critical,
                    summary: format!("critical drift in {}: {}", self.env, f.object),
                    details: serde_json::to_value(f).unwrap_or_default(),
                })
                .await?;
            report.paged += 1;
        }
        if !self
            .flags
            .is_enabled(&self.tenant, Flag::DriftPrBotEnabled)
            .await?
        {
            report.pr_bot_off = true;
            return Ok(report);
        }
        let desired_by_id: BTreeMap<ObjectId, &DesiredObject> = desired
            .iter()
            .map(|d| (ObjectId::of(&d.object), d))
            .collect();
        let live_by_id: BTreeMap<ObjectId, &LiveObject> =
            live.iter().map(|o| (ObjectId::of(o), o)).collect();
        for f in &report.findings {
            if self.proposer.find_open(&f.fingerprint).await?.is_some() {
                report.already_proposed += 1;
                continue;
            }
            let Some(d) = desired_by_id.get(&f.object) else {
                continue;
            };
            let proposal = proposal_for(
                f,
                d,
                live_by_id.get(&f.object).copied(),
                files,
                &self.env,
                at,
            );
            report
                .proposed
                .push(self.proposer.propose(&proposal).await?);
        }
        Ok(report)
    }
}
