use super::*;

fn series(name: &str, points: &[(f64, f64)], dashed: bool) -> Series {
    Series {
        name: name.to_owned(),
        points: points.to_vec(),
        dashed,
    }
}

fn sample() -> String {
    let routed = series("a<b&c", &[(0.0, 0.5), (0.5, 0.9), (1.0, 0.8)], false);
    let random = series("random", &[(0.0, 0.5), (1.0, 0.8)], true);
    let odd = [
        (-0.5, -1.0),
        (1.5, 0.7),
        (f64::NAN, 0.3),
        (0.2, f64::INFINITY),
    ];
    let lines = [routed, random, series("odd", &odd, false)];
    let marker = Marker {
        name: "95% \"q\"".to_owned(),
        point: (0.3, 0.85),
    };
    line_chart_svg(
        "Routing 'curve'",
        "share > 0",
        "accuracy",
        &lines,
        &[marker],
    )
}

/// Tags nest and close, `<` and `>` only delimit tags, every `&` starts an entity.
fn well_formed(svg: &str) -> bool {
    let entities = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
    let entity = |i: usize| entities.iter().any(|e| svg[i..].starts_with(e));
    let mut stack = Vec::new();
    let mut rest = svg;
    while let (Some(open), Some(close)) = (rest.find('<'), rest.find('>')) {
        let tag = &rest[open + 1..close.max(open + 1)];
        if close < open || tag.contains('<') {
            return false;
        } else if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name) {
                return false;
            }
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or(""));
        }
        rest = &rest[close + 1..];
    }
    svg.match_indices('&').all(|(i, _)| entity(i)) && stack.is_empty() && rest.trim().is_empty()
}

/// Every number in the `name="…"` attributes (split on spaces and commas).
fn numbers_in(svg: &str, name: &str) -> Vec<f64> {
    let key = format!(" {name}=\"");
    let values = svg.split(&key).skip(1).map(|v| &v[..v.find('"').unwrap()]);
    let numbers = values.flat_map(|v| v.split([' ', ',']).filter(|n| !n.is_empty()));
    numbers.map(|n| n.parse().unwrap()).collect()
}

#[test]
fn structure_and_escaping() {
    let svg = sample();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains("viewBox=\"0 0 720 480\"") && svg.ends_with("</svg>\n"));
    assert!(well_formed(&svg), "{svg}");
    assert_eq!(svg.matches("<polyline").count(), 3);
    assert_eq!(svg.matches("stroke-dasharray").count(), 2); // the line and its legend sample
    assert_eq!(svg.matches("<circle").count(), 1);
    for escaped in [
        "a&lt;b&amp;c",
        "Routing &apos;curve&apos;",
        "share &gt; 0",
        "95% &quot;q",
    ] {
        assert!(svg.contains(escaped), "{escaped}");
    }
    assert!(!svg.contains("a<b") && svg == sample());
    assert!(!well_formed("<svg><g></svg></g>") && !well_formed("<svg>a & b</svg>"));
}

#[test]
fn every_coordinate_lies_inside_the_plot_area() {
    let svg = sample();
    let points = numbers_in(&svg, "points");
    assert_eq!(points.len(), 2 * (3 + 2 + 2)); // non-finite points skipped
    let mut xs: Vec<f64> = points.iter().step_by(2).copied().collect();
    let mut ys: Vec<f64> = points.iter().skip(1).step_by(2).copied().collect();
    xs.extend(numbers_in(&svg, "cx"));
    ys.extend(numbers_in(&svg, "cy"));
    assert!(xs.iter().all(|x| (LEFT..=RIGHT).contains(x)), "{xs:?}");
    assert!(ys.iter().all(|y| (TOP..=BOTTOM).contains(y)), "{ys:?}");
    assert!(xs.contains(&LEFT) && xs.contains(&RIGHT) && ys.contains(&BOTTOM));
}

#[test]
fn empty_chart_still_has_axes() {
    let svg = line_chart_svg("t", "x", "y", &[], &[]);
    assert!(well_formed(&svg), "{svg}");
    assert!(svg.starts_with("<svg") && !svg.contains("<polyline"));
    assert!(svg.contains(&line((LEFT, BOTTOM), (RIGHT, BOTTOM), INK)));
    assert!(svg.contains(&line((LEFT, TOP), (LEFT, BOTTOM), INK)));
    for label in ["0.0", "0.1", "1.0"] {
        assert!(svg.contains(&format!(">{label}</text>")), "{label}");
    }
}

#[test]
fn y_axis_rounds_up_to_a_tenth_and_keeps_ten_steps() {
    let axes = [0.0, 0.83, 0.7, 1.0, 1.2, 3.4, 42.0].map(y_axis);
    let tops = [0.1, 0.9, 0.7, 1.0, 1.2, 3.5, 45.0];
    let steps = [0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 5.0];
    assert_eq!(axes.map(|a| a.0), tops);
    assert_eq!(axes.map(|a| a.1), steps);
}
