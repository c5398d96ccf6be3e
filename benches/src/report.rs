//! Medians and the plain-text table the demo prints.

use std::fmt;
use std::time::Duration;

/// The median of some durations (the mean of the middle two for an even count;
/// zero for none).
pub fn median(values: impl IntoIterator<Item = Duration>) -> Duration {
    let mut values: Vec<Duration> = values.into_iter().collect();
    values.sort_unstable();
    match values.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    }
}

/// The median of some numbers, as [`median`]; NaNs sort last.
pub fn median_f64(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_unstable_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A duration with a unit that keeps three or four significant digits.
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// A per-second rate, in millions or thousands.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else {
        format!("{:.1} k/s", per_sec / 1e3)
    }
}

/// A byte count in the largest binary unit it fills (`512 B`, `4 KiB`, `1.5 GiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A count with thousands separators (1,000,000).
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows of cells in left-aligned columns, two spaces apart; one line per row.
pub fn grid(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A titled two-column table grouped in sections.
#[derive(Debug)]
pub struct Table {
    title: String,
    /// Section heading, then (figure, value) rows.
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Table {
    /// An empty table.
    pub fn new(title: String) -> Table {
        Table {
            title,
            sections: Vec::new(),
        }
    }

    /// Starts a section; later rows go under it.
    pub fn section(&mut self, heading: String) {
        self.sections.push((heading, Vec::new()));
    }

    /// Adds a row to the current section (starting an untitled one if needed).
    pub fn row(&mut self, figure: &str, value: String) {
        if self.sections.is_empty() {
            self.section(String::new());
        }
        if let Some((_, rows)) = self.sections.last_mut() {
            rows.push((figure.to_owned(), value));
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .sections
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|(figure, _)| figure.chars().count()))
            .max()
            .unwrap_or(0);
        writeln!(f, "{}", self.title)?;
        for (heading, rows) in &self.sections {
            writeln!(f)?;
            writeln!(f, "{heading}")?;
            for (figure, value) in rows {
                writeln!(f, "  {figure:<width$}  {value}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let ms = Duration::from_millis;
        assert_eq!(median([ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median([ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median([]), Duration::ZERO);
        assert_eq!(median_f64([0.5, 0.1, 0.3]), 0.3);
    }

    #[test]
    fn grids_align_columns() {
        let rows = vec![
            vec!["a".to_owned(), "bb".into()],
            vec!["ccc".to_owned(), "d".into()],
        ];
        assert_eq!(grid(&rows), "a    bb\nccc  d\n");
    }

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_000_000), "1,000,000");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
    }
}
