//! Motion detection without GStreamer: a luma plane in, motion cells, boxes and events out.
//!
//! - The luma plane is averaged into a grid of cells (`width` cells across, whatever the
//!   input size), which also averages sensor noise away.
//! - The background is a running average per cell. A cell has changed when it differs
//!   from the background by more than `threshold`, after removing the frame's overall
//!   brightness shift (auto-exposure drifts and lights dimming move every cell together).
//! - Isolated changed cells are noise: a cell counts only with at least one changed
//!   4-neighbour.
//! - When more than `global_change` of the frame changes at once (lights switched on, IR
//!   night mode), it is not motion: the background is reset to the frame.
//! - Motion starts after `trigger_frames` frames in a row with at least `min_area` of the
//!   frame changed, and ends after `calm` seconds below it.

/// A polygon in normalised coordinates (0..1 across and down the frame).
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon(pub Vec<(f32, f32)>);

impl Polygon {
    /// Even-odd rule.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let p = &self.0;
        let mut inside = false;
        let mut j = p.len().wrapping_sub(1);
        for i in 0..p.len() {
            let (xi, yi) = p[i];
            let (xj, yj) = p[j];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// `x,y x,y x,y` (at least three points, each 0..1).
pub fn parse_polygon(s: &str) -> Result<Polygon, String> {
    let mut pts = Vec::new();
    for p in s.split_whitespace() {
        let (x, y) = p
            .split_once(',')
            .ok_or_else(|| format!("point {p:?} is not x,y"))?;
        let x: f32 = x.trim().parse().map_err(|_| format!("bad x in {p:?}"))?;
        let y: f32 = y.trim().parse().map_err(|_| format!("bad y in {p:?}"))?;
        if !(0.0..=1.0).contains(&x) || !(0.0..=1.0).contains(&y) {
            return Err(format!(
                "point {p:?} is outside 0..1 (coordinates are fractions of the frame)"
            ));
        }
        pts.push((x, y));
    }
    if pts.len() < 3 {
        return Err(format!("{s:?} has fewer than three points"));
    }
    Ok(Polygon(pts))
}

/// Polygons separated by `;`: `0,0 0.2,0 0.2,1; 0.8,0 1,0 1,1`.
pub fn parse_mask(s: &str) -> Result<Vec<Polygon>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, p)| parse_polygon(p).map_err(|e| format!("mask polygon {}: {e}", i + 1)))
        .collect()
}

/// Named zones: `door:0,0 0.3,0 0.3,1; path:0.3,0.5 1,0.5 1,1`.
pub fn parse_zones(s: &str) -> Result<Vec<(String, Polygon)>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(|z| {
            let (name, poly) = z
                .split_once(':')
                .ok_or_else(|| format!("zone {z:?} is not name:x,y x,y x,y"))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!("zone name {name:?}: letters, digits, - and _ only"));
            }
            Ok((
                name.to_string(),
                parse_polygon(poly).map_err(|e| format!("zone {name}: {e}"))?,
            ))
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Grid cells across (the grid keeps the frame's aspect ratio).
    pub width: usize,
    /// Luma difference (0-255) that makes a cell changed.
    pub threshold: f32,
    /// Fraction of the watched frame that must change for motion.
    pub min_area: f32,
    pub trigger_frames: u32,
    /// Seconds below `min_area` that end the motion.
    pub calm: f64,
    /// Fraction of the watched frame changing at once that is a lighting change.
    pub global_change: f32,
    /// How fast the background follows the scene, per frame (0-1).
    pub learning_rate: f32,
    pub mask: Vec<Polygon>,
    pub zones: Vec<(String, Polygon)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            width: 160,
            threshold: 20.0,
            min_area: 0.004,
            trigger_frames: 3,
            calm: 2.0,
            global_change: 0.5,
            learning_rate: 0.05,
            mask: Vec::new(),
            zones: Vec::new(),
        }
    }
}

/// A changed region, normalised (x, y, width, height).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxN {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// Changed cells in it.
    pub cells: usize,
}

/// What one frame did to the motion state.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Start,
    Update,
    End,
}

/// One frame's analysis.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Fraction of the watched frame changed.
    pub area: f32,
    /// Filled only on frames with a `change` (start, update, end), where a message
    /// may go out.
    pub boxes: Vec<BoxN>,
    /// Zones with changed cells; filled like `boxes`.
    pub zones: Vec<String>,
    /// Most of the frame changed at once: treated as lighting, not motion.
    pub global: bool,
    pub change: Option<Change>,
    pub active: bool,
}

pub struct Detector {
    cfg: Config,
    gw: usize,
    gh: usize,
    /// Cells watched (not masked), and the zones each cell is in.
    watched: Vec<bool>,
    cell_zones: Vec<Vec<usize>>,
    watched_count: usize,
    bg: Vec<f32>,
    cur: Vec<f32>,
    changed: Vec<bool>,
    primed: bool,
    streak: u32,
    active: bool,
    last_motion: f64,
    /// Score over the current event: the largest area seen.
    pub peak: f32,
    /// Per-frame scratch, kept to spare the allocations: each grid column's pixel
    /// range (for a frame `cols_w` wide), the sums per cell and the rows per grid row.
    cols: Vec<(usize, usize)>,
    cols_w: usize,
    sums: Vec<u32>,
    rows: Vec<u32>,
}

impl Detector {
    pub fn new(cfg: Config, frame_w: usize, frame_h: usize) -> Detector {
        let gw = cfg.width.clamp(8, frame_w.max(8));
        let gh = ((gw * frame_h) as f32 / frame_w.max(1) as f32)
            .round()
            .max(4.0) as usize;
        let mut watched = vec![true; gw * gh];
        let mut cell_zones = vec![Vec::new(); gw * gh];
        for y in 0..gh {
            for x in 0..gw {
                let (cx, cy) = ((x as f32 + 0.5) / gw as f32, (y as f32 + 0.5) / gh as f32);
                let i = y * gw + x;
                watched[i] = !cfg.mask.iter().any(|p| p.contains(cx, cy));
                for (z, (_, p)) in cfg.zones.iter().enumerate() {
                    if p.contains(cx, cy) {
                        cell_zones[i].push(z);
                    }
                }
            }
        }
        let watched_count = watched.iter().filter(|w| **w).count().max(1);
        Detector {
            cfg,
            gw,
            gh,
            watched,
            cell_zones,
            watched_count,
            bg: vec![0.0; gw * gh],
            cur: vec![0.0; gw * gh],
            changed: vec![false; gw * gh],
            primed: false,
            streak: 0,
            active: false,
            last_motion: 0.0,
            peak: 0.0,
            cols: Vec::new(),
            cols_w: 0,
            sums: vec![0; gw * gh],
            rows: vec![0; gh],
        }
    }

    /// New thresholds for a running detector (the grid, mask and zones stay).
    pub fn tune(&mut self, c: &Config) {
        self.cfg.threshold = c.threshold;
        self.cfg.min_area = c.min_area;
        self.cfg.trigger_frames = c.trigger_frames;
        self.cfg.calm = c.calm;
        self.cfg.global_change = c.global_change;
        self.cfg.learning_rate = c.learning_rate;
    }

    /// Forgets the background and any motion in progress (after a gap in the stream: a
    /// camera that came back may show another scene).
    pub fn restart(&mut self) {
        self.primed = false;
        self.streak = 0;
        self.active = false;
        self.peak = 0.0;
    }

    pub fn grid(&self) -> (usize, usize) {
        (self.gw, self.gh)
    }

    pub fn active(&self) -> bool {
        self.active
    }

    /// Average the luma plane (`stride` bytes a row) into the grid. Each cell's row
    /// segment is summed as a slice (the compiler vectorises it); in cells at least four
    /// rows tall every other row is read, which averages noise just as well at half the
    /// cost (a 1080p frame: 160x90 cells of 12x12 pixels).
    fn downscale(&mut self, luma: &[u8], w: usize, h: usize, stride: usize) {
        let (gw, gh) = (self.gw, self.gh);
        if self.cols_w != w {
            self.cols = (0..gw)
                .map(|c| (c * w / gw, ((c + 1) * w / gw).max(c * w / gw + 1).min(w)))
                .collect();
            self.cols_w = w;
        }
        let step = if h >= gh * 4 { 2 } else { 1 };
        self.sums.fill(0);
        self.rows.fill(0);
        for y in (0..h).step_by(step) {
            let row = &luma[y * stride..y * stride + w];
            let cy = (y * gh / h).min(gh - 1);
            self.rows[cy] += 1;
            let cells = &mut self.sums[cy * gw..(cy + 1) * gw];
            for (sum, &(x0, x1)) in cells.iter_mut().zip(&self.cols) {
                *sum += row[x0..x1].iter().map(|&v| v as u32).sum::<u32>();
            }
        }
        for cy in 0..gh {
            for (cx, &(x0, x1)) in self.cols.iter().enumerate() {
                let n = (self.rows[cy] * (x1 - x0) as u32).max(1);
                self.cur[cy * gw + cx] = self.sums[cy * gw + cx] as f32 / n as f32;
            }
        }
    }

    /// Analyse one frame at `t` seconds (stream time). `luma` must hold `h` rows of
    /// `stride` bytes with `w` pixels each.
    pub fn process(&mut self, luma: &[u8], w: usize, h: usize, stride: usize, t: f64) -> Frame {
        assert!(w > 0 && h > 0 && stride >= w && luma.len() >= stride * (h - 1) + w);
        self.downscale(luma, w, h, stride);
        let n = self.gw * self.gh;
        if !self.primed {
            self.bg.copy_from_slice(&self.cur);
            self.primed = true;
        }
        // The overall brightness shift of the watched cells, taken out before comparing.
        let (mut sc, mut sb) = (0.0f64, 0.0f64);
        for i in 0..n {
            if self.watched[i] {
                sc += self.cur[i] as f64;
                sb += self.bg[i] as f64;
            }
        }
        let shift = ((sc - sb) / self.watched_count as f64) as f32;
        let mut raw = 0usize;
        for i in 0..n {
            let d = (self.cur[i] - self.bg[i] - shift).abs();
            self.changed[i] = self.watched[i] && d > self.cfg.threshold;
            raw += self.changed[i] as usize;
        }
        let global = raw as f32 / self.watched_count as f32 > self.cfg.global_change;
        if global {
            // Lighting, not motion: start again from this frame.
            self.bg.copy_from_slice(&self.cur);
            self.changed.iter_mut().for_each(|c| *c = false);
        } else {
            // Only cells with a changed neighbour count: single cells are noise.
            let (gw, gh) = (self.gw, self.gh);
            let keep: Vec<bool> = (0..n)
                .map(|i| {
                    let (x, y) = (i % gw, i / gw);
                    self.changed[i]
                        && ((x > 0 && self.changed[i - 1])
                            || (x + 1 < gw && self.changed[i + 1])
                            || (y > 0 && self.changed[i - gw])
                            || (y + 1 < gh && self.changed[i + gw]))
                })
                .collect();
            self.changed = keep;
            // Changed cells learn slowly (a parked car becomes background in a while),
            // the rest at the full rate.
            let a = self.cfg.learning_rate;
            for i in 0..n {
                let rate = if self.changed[i] { a * 0.1 } else { a };
                self.bg[i] += rate * (self.cur[i] - self.bg[i]);
            }
        }
        let count = self.changed.iter().filter(|c| **c).count();
        let area = count as f32 / self.watched_count as f32;
        let moving = area >= self.cfg.min_area && !global;
        let change = if moving {
            self.last_motion = t;
            self.streak += 1;
            if !self.active && self.streak >= self.cfg.trigger_frames {
                self.active = true;
                self.peak = area;
                Some(Change::Start)
            } else if self.active {
                self.peak = self.peak.max(area);
                Some(Change::Update)
            } else {
                None
            }
        } else {
            self.streak = 0;
            if self.active && t - self.last_motion >= self.cfg.calm {
                self.active = false;
                Some(Change::End)
            } else {
                None
            }
        };
        // Regions and zones only where a message may go out, not on every frame.
        let (boxes, zones) = if change.is_some() && count > 0 {
            (self.boxes(), self.zones())
        } else {
            (Vec::new(), Vec::new())
        };
        Frame {
            area,
            boxes,
            zones,
            global,
            change,
            active: self.active,
        }
    }

    /// The zones with changed cells.
    fn zones(&self) -> Vec<String> {
        let n = self.gw * self.gh;
        self.cfg
            .zones
            .iter()
            .enumerate()
            .filter(|(z, _)| (0..n).any(|i| self.changed[i] && self.cell_zones[i].contains(z)))
            .map(|(_, (name, _))| name.clone())
            .collect()
    }

    /// Connected regions of changed cells (4-connectivity), largest first, at most 8.
    fn boxes(&self) -> Vec<BoxN> {
        let (gw, gh) = (self.gw, self.gh);
        let mut seen = vec![false; gw * gh];
        let mut out = Vec::new();
        let mut stack = Vec::new();
        for start in 0..gw * gh {
            if !self.changed[start] || seen[start] {
                continue;
            }
            let (mut x0, mut y0, mut x1, mut y1, mut cells) = (gw, gh, 0, 0, 0);
            seen[start] = true;
            stack.push(start);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % gw, i / gw);
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                cells += 1;
                let mut visit = |j: usize| {
                    if self.changed[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                };
                if x > 0 {
                    visit(i - 1);
                }
                if x + 1 < gw {
                    visit(i + 1);
                }
                if y > 0 {
                    visit(i - gw);
                }
                if y + 1 < gh {
                    visit(i + gw);
                }
            }
            out.push(BoxN {
                x: x0 as f32 / gw as f32,
                y: y0 as f32 / gh as f32,
                w: (x1 - x0 + 1) as f32 / gw as f32,
                h: (y1 - y0 + 1) as f32 / gh as f32,
                cells,
            });
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.cells));
        out.truncate(8);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mid-grey 320x240 frame with a dark square at (x, y).
    fn frame(square: Option<(usize, usize)>, brightness: i32, noise_seed: u64) -> Vec<u8> {
        let (w, h) = (320, 240);
        let mut f = vec![0u8; w * h];
        let mut s = noise_seed | 1;
        for (i, p) in f.iter_mut().enumerate() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = (s % 17) as i32 - 8;
            let (x, y) = (i % w, i / w);
            let mut v = 128 + brightness + noise;
            if let Some((sx, sy)) = square {
                if (sx..sx + 40).contains(&x) && (sy..sy + 40).contains(&y) {
                    v = 30 + noise;
                }
            }
            *p = v.clamp(0, 255) as u8;
        }
        f
    }

    fn run(frames: impl Iterator<Item = Vec<u8>>, cfg: Config) -> Vec<(usize, Change)> {
        let mut d = Detector::new(cfg, 320, 240);
        let mut out = Vec::new();
        for (n, f) in frames.enumerate() {
            if let Some(c) = d.process(&f, 320, 240, 320, n as f64 / 15.0).change {
                out.push((n, c));
            }
        }
        out
    }

    #[test]
    fn noise_alone_is_no_motion() {
        let ev = run(
            (0..150).map(|n| frame(None, 0, n as u64 + 7)),
            Config::default(),
        );
        assert!(ev.is_empty(), "{ev:?}");
    }

    #[test]
    fn a_moving_square_is_one_event_with_start_and_end() {
        // Frames 30..90 the square crosses; 2 s of calm (30 frames) end it.
        let frames = (0..180).map(|n| {
            let sq = (30..90).contains(&n).then(|| ((n - 30) * 4, 100));
            frame(sq, 0, n as u64 + 1)
        });
        let ev = run(frames, Config::default());
        let starts: Vec<_> = ev.iter().filter(|(_, c)| *c == Change::Start).collect();
        let ends: Vec<_> = ev.iter().filter(|(_, c)| *c == Change::End).collect();
        assert_eq!((starts.len(), ends.len()), (1, 1), "{ev:?}");
        assert!(
            (30..=34).contains(&starts[0].0),
            "start at frame {}",
            starts[0].0
        );
        // Last motion at frame 90 (the square leaves); end 30 frames later.
        assert!(
            (118..=124).contains(&ends[0].0),
            "end at frame {}",
            ends[0].0
        );
    }

    #[test]
    fn lights_switched_on_is_no_motion() {
        let ev = run(
            (0..120).map(|n| frame(None, if n >= 40 { 70 } else { 0 }, n as u64 + 3)),
            Config::default(),
        );
        assert!(ev.is_empty(), "{ev:?}");
        // A slow exposure drift neither.
        let ev = run(
            (0..150).map(|n| frame(None, n / 3, n as u64 + 3)),
            Config::default(),
        );
        assert!(ev.is_empty(), "{ev:?}");
    }

    #[test]
    fn masked_motion_is_ignored_and_zones_are_named() {
        let frames =
            || (0..120).map(|n| frame((30..90).contains(&n).then_some((20, 100)), 0, n as u64));
        let cfg = Config {
            mask: parse_mask("0,0 0.4,0 0.4,1 0,1").unwrap(),
            ..Default::default()
        };
        assert!(run(frames(), cfg).is_empty());
        let cfg = Config {
            zones: parse_zones("door:0,0 0.4,0 0.4,1 0,1; gate:0.6,0 1,0 1,1 0.6,1").unwrap(),
            ..Default::default()
        };
        let mut d = Detector::new(cfg, 320, 240);
        let mut zones = Vec::new();
        for (n, f) in frames().enumerate() {
            let r = d.process(&f, 320, 240, 320, n as f64 / 15.0);
            if r.change == Some(Change::Start) {
                zones = r.zones.clone();
                assert!(!r.boxes.is_empty());
                let b = r.boxes[0];
                // The square: x 20..60 of 320, y 100..140 of 240.
                assert!(
                    b.x < 0.1 && b.x + b.w > 0.15 && b.y < 0.45 && b.y + b.h > 0.55,
                    "{b:?}"
                );
            }
        }
        assert_eq!(zones, vec!["door".to_string()]);
    }

    #[test]
    fn polygon_parsing_errors_say_why() {
        assert!(parse_polygon("0,0 1,0").unwrap_err().contains("three"));
        assert!(parse_polygon("0,0 1,0 2,2")
            .unwrap_err()
            .contains("outside"));
        assert!(parse_zones("0,0 1,0 1,1").unwrap_err().contains("name:"));
        assert!(parse_mask("; 0,0 1,0 1,1 ;").is_ok());
        assert!(Polygon(vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]).contains(0.5, 0.5));
    }
}
