//! SVG charts drawn with plotters.

use super::{ReportError, Run};
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn err(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Chart {
        chart: path.display().to_string(),
        message,
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(1e-6);
    (lo - span * 0.05, hi + span * 0.05)
}

/// Best score so far against evaluations, one line per run.
pub fn best_so_far(runs: &[Run], path: &Path) -> Result<(), ReportError> {
    let e = err(path);
    let series: Vec<Vec<(usize, f64)>> = runs.iter().map(Run::best_so_far).collect();
    let max_n = series
        .iter()
        .flat_map(|s| s.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(2);
    let ys: Vec<f64> = series.iter().flat_map(|s| s.iter().map(|p| p.1)).collect();
    let (lo, hi) = padded(
        ys.iter().cloned().fold(f64::INFINITY, f64::min),
        ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Best score so far", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1usize..max_n, lo..hi)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("evaluations")
        .y_desc("score (validation accuracy, %)")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    for (i, (run, s)) in runs.iter().zip(series).enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(s, color.stroke_width(2)))
            .map_err(|x| e(x.to_string()))?
            .label(run.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))?;
    Ok(())
}

/// Score against parameters, Pareto front marked.
pub fn pareto(
    run: &Run,
    points: &[(f64, f64, usize)],
    front: &[usize],
    path: &Path,
) -> Result<(), ReportError> {
    let e = err(path);
    let xs: Vec<f64> = points.iter().map(|p| p.0 / 1e6).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (xl, xh) = padded(
        xs.iter().cloned().fold(f64::INFINITY, f64::min),
        xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let (yl, yh) = padded(
        ys.iter().cloned().fold(f64::INFINITY, f64::min),
        ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Score against size: {}", run.label),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xl..xh, yl..yh)
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("parameters (millions)")
        .y_desc("score (validation accuracy, %)")
        .draw()
        .map_err(|x| e(x.to_string()))?;
    chart
        .draw_series(
            xs.iter()
                .zip(&ys)
                .map(|(&x, &y)| Circle::new((x, y), 4, COLORS[0].mix(0.6).filled())),
        )
        .map_err(|x| e(x.to_string()))?
        .label("evaluated")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, COLORS[0].filled()));
    let line: Vec<(f64, f64)> = front.iter().map(|&i| (xs[i], ys[i])).collect();
    chart
        .draw_series(LineSeries::new(line.clone(), COLORS[3].stroke_width(2)))
        .map_err(|x| e(x.to_string()))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], COLORS[3].stroke_width(2)));
    chart
        .draw_series(
            line.iter()
                .map(|&(x, y)| Circle::new((x, y), 5, COLORS[3].filled())),
        )
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))?;
    Ok(())
}
