//! Pareto fronts of points whose every coordinate is to be minimised:
//! dominance, non-dominated sorting and crowding distance (as NSGA-II ranks
//! a population), and the hypervolume a front dominates up to a reference
//! point.

/// Whether `a` dominates `b`: no worse in every coordinate, better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

/// Each point's non-dominated rank: 0 for the front, 1 for the front of
/// the rest, and so on.
pub fn ranks(points: &[Vec<f64>]) -> Vec<usize> {
    let n = points.len();
    let mut rank = vec![usize::MAX; n];
    let mut left: Vec<usize> = (0..n).collect();
    let mut r = 0;
    while !left.is_empty() {
        let front: Vec<usize> = left
            .iter()
            .copied()
            .filter(|&i| {
                !left
                    .iter()
                    .any(|&j| j != i && dominates(&points[j], &points[i]))
            })
            .collect();
        if front.is_empty() {
            // Only with NaN coordinates; rank the rest last.
            for &i in &left {
                rank[i] = r;
            }
            break;
        }
        for &i in &front {
            rank[i] = r;
        }
        left.retain(|i| !front.contains(i));
        r += 1;
    }
    rank
}

/// The indices of the non-dominated points, in their order. In
/// lexicographic order a point can only be dominated by one before it, and
/// then by one of the front found so far: O(n log n + n·front).
pub fn front(points: &[Vec<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .iter()
            .zip(&points[b])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut found: Vec<usize> = Vec::new();
    for i in order {
        if !found.iter().any(|&j| dominates(&points[j], &points[i])) {
            found.push(i);
        }
    }
    found.sort_unstable();
    found
}

/// The crowding distance of each of `members` (indices into `points`)
/// within their group: the sum over coordinates of the gap between each
/// point's neighbours, normalised by the group's range; the extremes get
/// infinity.
pub fn crowding(points: &[Vec<f64>], members: &[usize]) -> Vec<f64> {
    let m = members.len();
    let mut dist = vec![0.0; m];
    if m <= 2 {
        return vec![f64::INFINITY; m];
    }
    let dims = members
        .first()
        .and_then(|&i| points.get(i))
        .map_or(0, Vec::len);
    // Coordinate `d` of member `k`.
    let at = |k: usize, d: usize| {
        points
            .get(members[k])
            .and_then(|p| p.get(d))
            .copied()
            .unwrap_or(0.0)
    };
    for d in 0..dims {
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| at(a, d).total_cmp(&at(b, d)));
        let (first, last) = (order[0], order[m - 1]);
        dist[first] = f64::INFINITY;
        dist[last] = f64::INFINITY;
        let range = at(last, d) - at(first, d);
        if range <= 0.0 {
            continue;
        }
        for k in 1..m - 1 {
            let gap = at(order[k + 1], d) - at(order[k - 1], d);
            dist[order[k]] += gap / range;
        }
    }
    dist
}

/// The volume dominated by `points` and bounded by `reference` (which every
/// counted point must be strictly better than in every coordinate; the
/// others add nothing). Exact, by slicing along the last coordinate: fine
/// for the fronts of a search (hundreds of points, 2-3 coordinates).
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let inside: Vec<&[f64]> = points
        .iter()
        .map(Vec::as_slice)
        .filter(|p| p.len() == reference.len() && p.iter().zip(reference).all(|(x, r)| x < r))
        .collect();
    volume(&inside, reference)
}

fn volume(points: &[&[f64]], reference: &[f64]) -> f64 {
    let d = reference.len();
    if points.is_empty() || d == 0 {
        return 0.0;
    }
    if d == 1 {
        let best = points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        return (reference[0] - best).max(0.0);
    }
    let last = d - 1;
    let mut sorted: Vec<&[f64]> = points.to_vec();
    sorted.sort_by(|a, b| a[last].total_cmp(&b[last]));
    let mut total = 0.0;
    for i in 0..sorted.len() {
        let top = sorted.get(i + 1).map_or(reference[last], |p| p[last]);
        let slab = top - sorted[i][last];
        if slab <= 0.0 {
            continue;
        }
        let below: Vec<&[f64]> = sorted[..=i].iter().map(|p| &p[..last]).collect();
        total += volume(&below, &reference[..last]) * slab;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominance_needs_one_strictly_better_coordinate() {
        assert!(dominates(&[1.0, 2.0], &[1.0, 3.0]));
        assert!(!dominates(&[1.0, 2.0], &[1.0, 2.0]));
        assert!(!dominates(&[0.0, 4.0], &[1.0, 3.0]));
    }

    #[test]
    fn ranks_peel_fronts() {
        let p = vec![
            vec![1.0, 5.0],
            vec![2.0, 2.0],
            vec![5.0, 1.0],
            vec![3.0, 3.0],
            vec![6.0, 6.0],
        ];
        assert_eq!(ranks(&p), vec![0, 0, 0, 1, 2]);
        assert_eq!(front(&p), vec![0, 1, 2]);
        // The sweep agrees with the peeling on random clouds, ties included.
        let mut rng = crate::rng::Rng::seed(7);
        for _ in 0..20 {
            let cloud: Vec<Vec<f64>> = (0..60)
                .map(|_| (0..3).map(|_| rng.below(6) as f64).collect())
                .collect();
            let peeled: Vec<usize> = ranks(&cloud)
                .iter()
                .enumerate()
                .filter(|(_, &r)| r == 0)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(front(&cloud), peeled);
        }
    }

    #[test]
    fn crowding_favours_the_extremes_and_the_isolated() {
        let p = vec![
            vec![0.0, 10.0],
            vec![1.0, 9.0],
            vec![1.5, 8.5],
            vec![10.0, 0.0],
        ];
        let c = crowding(&p, &[0, 1, 2, 3]);
        assert!(c[0].is_infinite() && c[3].is_infinite());
        assert!(c[2] > c[1]);
    }

    #[test]
    fn hypervolume_of_known_shapes() {
        // One point: the box to the reference.
        assert_eq!(hypervolume(&[vec![1.0, 1.0]], &[3.0, 4.0]), 6.0);
        // A staircase of two: 2x1 + 1x2 overlapping in 1x1 -> 3.
        let two = vec![vec![1.0, 2.0], vec![2.0, 1.0]];
        assert!((hypervolume(&two, &[3.0, 3.0]) - 3.0).abs() < 1e-12);
        // A dominated point adds nothing; one outside the reference neither.
        let more = vec![
            vec![1.0, 2.0],
            vec![2.0, 1.0],
            vec![2.5, 2.5],
            vec![0.5, 9.0],
        ];
        assert!((hypervolume(&more, &[3.0, 3.0]) - 3.0).abs() < 1e-12);
        // Three dimensions: a unit cube's corner point, and two boxes.
        assert_eq!(hypervolume(&[vec![0.0, 0.0, 0.0]], &[1.0, 1.0, 1.0]), 1.0);
        let boxes = vec![vec![0.0, 0.5, 0.5], vec![0.5, 0.0, 0.0]];
        // 1x0.5x0.5 + 0.5x1x1 - overlap 0.5x0.5x0.5 = 0.25 + 0.5 - 0.125.
        assert!((hypervolume(&boxes, &[1.0, 1.0, 1.0]) - 0.625).abs() < 1e-12);
    }
}
