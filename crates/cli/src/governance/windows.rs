//! `flotilla governance windows …`: freeze windows and embargoes.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::{Client, EXAMPLE_TIME};
use crate::client::failed;
use crate::format::{now, parse_time, print_json, show_time};
use crate::output::{Output, table};

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum WindowsCommand {
    /// Create a window. Exactly one of --once, --monthly-day or --weekly.
    Create {
        #[arg(long)]
        name: String,
        /// freeze or embargo.
        #[arg(long, default_value = "freeze")]
        kind: String,
        /// Owning unit (empty: platform-wide, needs a central role).
        #[arg(long)]
        bu: Option<String>,
        #[arg(long = "env")]
        environments: Vec<String>,
        #[arg(long = "tier")]
        tiers: Vec<u32>,
        /// START,END as RFC 3339 times.
        #[arg(long)]
        once: Option<String>,
        /// Day of month (1..28, or -1..-28 from the end).
        #[arg(long, allow_hyphen_values = true)]
        monthly_day: Option<i32>,
        /// Months for --monthly-day (1..12; default every month).
        #[arg(long = "month")]
        months: Vec<u32>,
        /// Weekdays 1 (Monday) .. 7, comma-separated.
        #[arg(long)]
        weekly: Option<String>,
        /// UTC start HH:MM for recurring windows.
        #[arg(long, default_value = "00:00")]
        start: String,
        /// Length of a recurring window in hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List windows (active now only with --active).
    List {
        #[arg(long)]
        bu: Option<String>,
        #[arg(long)]
        active: bool,
    },
    Cancel {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// A window as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct WindowView {
    window_id: String,
    name: String,
    kind: &'static str,
    business_unit: String,
    /// The schedule in words.
    when: String,
    cancelled: bool,
}

fn when(schedule: Option<&pb::freeze_window::Schedule>) -> String {
    match schedule {
        Some(pb::freeze_window::Schedule::Once(o)) => format!(
            "{} .. {}",
            show_time(o.start.as_ref()),
            show_time(o.end.as_ref())
        ),
        Some(pb::freeze_window::Schedule::Monthly(m)) => format!(
            "monthly day {} {:02}:{:02} for {}h{}",
            m.day,
            m.start_minute / 60,
            m.start_minute % 60,
            m.duration_minutes / 60,
            if m.months.is_empty() {
                String::new()
            } else {
                format!(" in months {:?}", m.months)
            }
        ),
        Some(pb::freeze_window::Schedule::Weekly(x)) => format!(
            "weekly {:?} {:02}:{:02} for {}h",
            x.weekdays,
            x.start_minute / 60,
            x.start_minute % 60,
            x.duration_minutes / 60
        ),
        None => String::new(),
    }
}

impl From<&pb::FreezeWindow> for WindowView {
    fn from(w: &pb::FreezeWindow) -> Self {
        Self {
            window_id: w.window_id.clone(),
            name: w.name.clone(),
            kind: if w.kind == pb::WindowKind::Embargo as i32 {
                "embargo"
            } else {
                "freeze"
            },
            business_unit: w.business_unit.clone(),
            when: when(w.schedule.as_ref()),
            cancelled: w.cancelled,
        }
    }
}

impl WindowView {
    const HEADERS: [&str; 6] = ["id", "name", "kind", "unit", "when", "cancelled"];

    fn row(&self) -> Vec<String> {
        vec![
            self.window_id.clone(),
            self.name.clone(),
            self.kind.into(),
            self.business_unit.clone(),
            self.when.clone(),
            self.cancelled.to_string(),
        ]
    }
}

fn print_windows(output: Output, windows: &[pb::FreezeWindow]) -> anyhow::Result<()> {
    let views: Vec<WindowView> = windows.iter().map(WindowView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => table(
            &WindowView::HEADERS,
            &views.iter().map(WindowView::row).collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

/// Minutes after midnight of an HH:MM `--start`.
fn minutes(hhmm: &str) -> anyhow::Result<u32> {
    let (h, m) = hhmm
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--start {hhmm:?} is not HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse()
            .map_err(|_| anyhow::anyhow!("--start {hhmm:?} is not HH:MM"))?,
        m.parse()
            .map_err(|_| anyhow::anyhow!("--start {hhmm:?} is not HH:MM"))?,
    );
    if h > 23 || m > 59 {
        anyhow::bail!("--start {hhmm:?} is not a time of day");
    }
    Ok(h * 60 + m)
}

pub async fn run(
    c: &mut Client,
    output: Output,
    command: WindowsCommand,
) -> anyhow::Result<ExitCode> {
    let windows = match command {
        WindowsCommand::Create {
            name,
            kind,
            bu,
            environments,
            tiers,
            once,
            monthly_day,
            months,
            weekly,
            start,
            hours,
            reason,
        } => {
            let kind = match kind.as_str() {
                "freeze" => pb::WindowKind::Freeze,
                "embargo" => pb::WindowKind::Embargo,
                other => anyhow::bail!("--kind {other:?}: use freeze or embargo"),
            };
            let schedule = match (once, monthly_day, weekly) {
                (Some(o), None, None) => {
                    let (s, e) = o
                        .split_once(',')
                        .ok_or_else(|| anyhow::anyhow!("--once takes START,END"))?;
                    pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                        start: Some(parse_time("--once start", s, EXAMPLE_TIME)?),
                        end: Some(parse_time("--once end", e, EXAMPLE_TIME)?),
                    })
                }
                (None, Some(day), None) => {
                    pb::freeze_window::Schedule::Monthly(pb::MonthlySchedule {
                        months,
                        day,
                        start_minute: minutes(&start)?,
                        duration_minutes: hours * 60,
                    })
                }
                (None, None, Some(days)) => {
                    let weekdays = days
                        .split(',')
                        .map(|d| d.trim().parse::<u32>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| {
                            anyhow::anyhow!("--weekly {days:?}: weekdays 1..7, comma-separated")
                        })?;
                    pb::freeze_window::Schedule::Weekly(pb::WeeklySchedule {
                        weekdays,
                        start_minute: minutes(&start)?,
                        duration_minutes: hours * 60,
                    })
                }
                _ => anyhow::bail!("give exactly one of --once, --monthly-day or --weekly"),
            };
            let bu = bu.unwrap_or_default();
            vec![
                c.create_freeze_window(pb::CreateFreezeWindowRequest {
                    window: Some(pb::FreezeWindow {
                        name,
                        kind: kind as i32,
                        scope: Some(pb::WindowScope {
                            business_units: if bu.is_empty() {
                                vec![]
                            } else {
                                vec![bu.clone()]
                            },
                            environments,
                            tiers,
                        }),
                        schedule: Some(schedule),
                        reason: reason.unwrap_or_default(),
                        business_unit: bu,
                        ..Default::default()
                    }),
                })
                .await
                .map_err(|s| failed("creating the window", s))?
                .into_inner(),
            ]
        }
        WindowsCommand::List { bu, active } => {
            let now = now()?;
            c.list_freeze_windows(pb::ListFreezeWindowsRequest {
                business_unit: bu.unwrap_or_default(),
                active_at: active.then_some(now),
            })
            .await
            .map_err(|s| failed("listing windows", s))?
            .into_inner()
            .windows
        }
        WindowsCommand::Cancel { id, reason } => vec![
            c.cancel_freeze_window(pb::CancelFreezeWindowRequest {
                window_id: id,
                reason: reason.unwrap_or_default(),
            })
            .await
            .map_err(|s| failed("cancelling the window", s))?
            .into_inner(),
        ],
    };
    print_windows(output, &windows)?;
    Ok(ExitCode::SUCCESS)
}
