/* The playground: train and prune a small ReLU network in the page and watch its exact input-space partition.

   No framework and no request to another host. The geometry is an independent implementation of the engine of
   spline_utils.partition2d (spline_utils/partition.py, cutting.py, polygons.py, tolerance.py), with its conventions:
   regions are convex polygons (counter-clockwise) cut layer by layer by the zero line of each node's pre-activation,
   which is affine on every region of the earlier layers; a vertex is on a line when |c + a1 x + a2 y| is within the
   engine's tolerance (relative to the domain's frame); a line cuts a region when some vertex is strictly above and
   some strictly below; a piece's code is "pre-activation > 0" at its vertex mean; hidden nodes are in layer order.
   The browser test (tests/test_browser_playground.py) checks region counts, codes, splines and training against
   the Python package through the test API window.playground.
*/
(function () {
  "use strict";

  // ---------------------------------------------------------------- constants (as in the package)
  const RELATIVE_TOLERANCE = 1e-10; // spline_utils.tolerance
  const ROUNDING_TOLERANCE = Math.pow(2, -44);
  const LAYER_COLOURS = ["#1f5fbf", "#2e9e44", "#9467bd"]; // plot.SPLINE_BLUE, plot.LAYER2_GREEN, then purple
  const OLD_GREY = "#b0b0b0"; // plot.OLD_GREY: the splines of earlier layers (Fig 1(a))
  const BOUNDARY_RED = "#d62728"; // plot.BOUNDARY_RED
  const MAX_REGIONS = 20000;
  const PROBE_SIDE = 32; // the Hamming distance's probe grid: 32 x 32 cell centres of the domain
  const HAMMING_LAG = 10; // steps between the two codes compared
  const TASKS = { // spline_utils.data: x_task, disk_task, square_task (their default squares)
    x: {name: "X", bounds: [-5, 5, -5, 5], inside: (x, y) => Math.abs(y) > Math.abs(x)},
    disk: {name: "disk", bounds: [-3, 3, -3, 3],
      inside: (x, y) => Math.sqrt((x + 0.4) * (x + 0.4) + (y + 0.5) * (y + 0.5)) < 1.4},
    square: {name: "square", bounds: [-2, 2, -2, 2], inside: (x, y) => Math.max(Math.abs(x), Math.abs(y)) < 1},
  };

  // ---------------------------------------------------------------- seeded random numbers
  function mulberry32(seed) {
    let state = seed >>> 0;
    return function () {
      state = (state + 0x6D2B79F5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  // ---------------------------------------------------------------- tolerances (spline_utils.tolerance)
  function frameAround(bounds) {
    return {cx: (bounds[0] + bounds[1]) / 2, cy: (bounds[2] + bounds[3]) / 2,
      half: Math.max(bounds[1] - bounds[0], bounds[3] - bounds[2]) / 2};
  }

  function lineTolerance(c, a1, a2, frame) {
    const atCentre = c + a1 * frame.cx + a2 * frame.cy;
    return RELATIVE_TOLERANCE * Math.abs(atCentre) + Math.abs(c) * ROUNDING_TOLERANCE +
      Math.abs(a1) * (RELATIVE_TOLERANCE * frame.half + ROUNDING_TOLERANCE * (Math.abs(frame.cx) + frame.half)) +
      Math.abs(a2) * (RELATIVE_TOLERANCE * frame.half + ROUNDING_TOLERANCE * (Math.abs(frame.cy) + frame.half));
  }

  function minSegmentLength(frame) {
    return 1e-12 * frame.half + ROUNDING_TOLERANCE * (Math.max(Math.abs(frame.cx), Math.abs(frame.cy)) + frame.half);
  }

  // ---------------------------------------------------------------- polygons: flat [x0, y0, x1, y1, ...], CCW
  function rectangle(b) {
    return [b[0], b[2], b[1], b[2], b[1], b[3], b[0], b[3]];
  }

  function sidesOf(poly, c, a1, a2, tolerance) {
    const n = poly.length / 2, values = new Float64Array(n), sides = new Int8Array(n);
    let above = false, below = false;
    for (let i = 0; i < n; i++) {
      const value = c + a1 * poly[2 * i] + a2 * poly[2 * i + 1];
      values[i] = value;
      if (value > tolerance) { sides[i] = 1; above = true; } else if (value < -tolerance) { sides[i] = -1; below = true; }
    }
    return {values, sides, above, below};
  }

  /** 2 where the line crosses the polygon (vertices strictly on both sides), else 1 (some strictly above) or 0. */
  function crossingOf(poly, c, a1, a2, tolerance) {
    let above = false, below = false;
    for (let i = 0; i < poly.length; i += 2) {
      const value = c + a1 * poly[i] + a2 * poly[i + 1];
      if (value > tolerance) above = true; else if (value < -tolerance) below = true;
    }
    return above && below ? 2 : (above ? 1 : 0);
  }

  /** The two halves (positive first) of a polygon that its line crosses (polygons.cut). */
  function cutPolygon(poly, values, sides) {
    const n = poly.length / 2, positive = [], negative = [];
    for (let i = 0; i < n; i++) {
      const j = (i + 1) % n, x = poly[2 * i], y = poly[2 * i + 1];
      if (sides[i] >= 0) positive.push(x, y);
      if (sides[i] <= 0) negative.push(x, y);
      if (sides[i] * sides[j] < 0) {
        const t = values[i] / (values[i] - values[j]);
        const px = x + t * (poly[2 * j] - x), py = y + t * (poly[2 * j + 1] - y);
        positive.push(px, py);
        negative.push(px, py);
      }
    }
    return [positive, negative];
  }

  /** The segment where the line c + a1 x + a2 y = 0 crosses the polygon, or null (polygons.clip_lines). */
  function clipLine(poly, c, a1, a2, frame) {
    const norm = Math.hypot(a1, a2);
    if (!(norm > 0)) return null;
    const {values, sides} = sidesOf(poly, c, a1, a2, lineTolerance(c, a1, a2, frame));
    const dx = -a2 / norm, dy = a1 / norm, n = poly.length / 2;
    let lowest = Infinity, highest = -Infinity;
    const reach = (x, y) => {
      const along = x * dx + y * dy;
      if (along < lowest) lowest = along;
      if (along > highest) highest = along;
    };
    for (let i = 0; i < n; i++) if (sides[i] === 0) reach(poly[2 * i], poly[2 * i + 1]);
    for (let i = 0; i < n; i++) {
      const j = (i + 1) % n;
      if (sides[i] * sides[j] < 0) {
        const t = values[i] / (values[i] - values[j]), x = poly[2 * i], y = poly[2 * i + 1];
        reach(x + t * (poly[2 * j] - x), y + t * (poly[2 * j + 1] - y));
      }
    }
    if (!(highest - lowest > minSegmentLength(frame)) || !isFinite(lowest)) return null;
    const scale = -c / (norm * norm), fx = scale * a1, fy = scale * a2;
    return [fx + lowest * dx, fy + lowest * dy, fx + highest * dx, fy + highest * dy];
  }

  function vertexMean(poly) {
    const n = poly.length / 2;
    let x = 0, y = 0;
    for (let i = 0; i < n; i++) { x += poly[2 * i]; y += poly[2 * i + 1]; }
    return [x / n, y / n];
  }

  function containsPoint(poly, x, y) {
    const n = poly.length / 2;
    for (let i = 0; i < n; i++) {
      const j = (i + 1) % n, ex = poly[2 * j] - poly[2 * i], ey = poly[2 * j + 1] - poly[2 * i + 1];
      if (ex * (y - poly[2 * i + 1]) - ey * (x - poly[2 * i]) < 0) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------- the network
  /** A 2-...-2 ReLU network; W[l] is row-major (fan_out x fan_in) as torch's Linear.weight, keep[l] the unit masks. */
  function makeNetwork(hidden, seed) {
    const sizes = [2, ...hidden, 2], random = mulberry32(seed), W = [], b = [];
    for (let l = 0; l + 1 < sizes.length; l++) { // torch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
      const bound = 1 / Math.sqrt(sizes[l]);
      W.push(Float64Array.from({length: sizes[l] * sizes[l + 1]}, () => (2 * random() - 1) * bound));
      b.push(Float64Array.from({length: sizes[l + 1]}, () => (2 * random() - 1) * bound));
    }
    return {sizes, W, b, keep: hidden.map((width) => new Uint8Array(width).fill(1))};
  }

  /** The weights the network computes with: a pruned unit's row, bias and outgoing column are zero. */
  function effective(net) {
    const W = net.W.map((w) => w.slice()), b = net.b.map((v) => v.slice());
    net.keep.forEach((keep, l) => keep.forEach((on, k) => {
      if (on) return;
      const fanIn = net.sizes[l], width = net.sizes[l + 1];
      W[l].fill(0, k * fanIn, (k + 1) * fanIn);
      b[l][k] = 0;
      for (let o = 0; o < net.sizes[l + 2]; o++) W[l + 1][o * width + k] = 0;
    }));
    return {sizes: net.sizes, W, b};
  }

  /** Work space for :func:`forwardInto`: per layer the pre-activations ``z`` and the outputs ``a``. */
  function buffersFor(sizes) {
    return sizes.slice(1).map((width) => ({z: new Float64Array(width), a: new Float64Array(width)}));
  }

  /** The network at one point: fills each layer's pre-activations and ReLU outputs (the last: the logits). */
  function forwardInto(eff, x, y, buffers) {
    for (let l = 0; l < eff.W.length; l++) {
      const fanIn = eff.sizes[l], width = eff.sizes[l + 1], W = eff.W[l], b = eff.b[l], {z, a} = buffers[l];
      const input = l === 0 ? null : buffers[l - 1].a;
      for (let k = 0; k < width; k++) {
        let sum = b[k];
        if (l === 0) { sum += W[2 * k] * x; sum += W[2 * k + 1] * y; } else {
          for (let j = 0; j < fanIn; j++) sum += W[k * fanIn + j] * input[j];
        }
        z[k] = sum;
        a[k] = sum > 0 ? sum : 0;
      }
    }
    return buffers;
  }

  // ---------------------------------------------------------------- the exact partition
  class PartitionTooLarge extends Error {}

  /** The exact partition of ``bounds`` by the network, layer by layer (spline_utils.partition2d). */
  function partition(net, bounds, maxRegions) {
    const eff = effective(net), frame = frameAround(bounds), nHidden = net.sizes.length - 2;
    let regions = [{poly: rectangle(bounds), post: Float64Array.from([0, 1, 0, 0, 0, 1]), code: ""}];
    const layers = [];
    for (let l = 0; l < nHidden; l++) {
      const fanIn = net.sizes[l], width = net.sizes[l + 1], W = eff.W[l], b = eff.b[l];
      const parents = regions, pres = [], next = [];
      for (let r = 0; r < parents.length; r++) {
        const parent = parents[r], post = parent.post, pre = new Float64Array(3 * width);
        for (let k = 0; k < width; k++) { // node k's pre-activation on this region: (c, a1, a2)
          let c = b[k], a1 = 0, a2 = 0;
          for (let j = 0; j < fanIn; j++) {
            const w = W[k * fanIn + j];
            c += w * post[3 * j]; a1 += w * post[3 * j + 1]; a2 += w * post[3 * j + 2];
          }
          pre[3 * k] = c; pre[3 * k + 1] = a1; pre[3 * k + 2] = a2;
        }
        pres.push(pre);
        const code = new Uint8Array(width), crossing = [], tolerances = [];
        for (let k = 0; k < width; k++) {
          const tolerance = lineTolerance(pre[3 * k], pre[3 * k + 1], pre[3 * k + 2], frame);
          const side = crossingOf(parent.poly, pre[3 * k], pre[3 * k + 1], pre[3 * k + 2], tolerance);
          if (side === 2) { crossing.push(k); tolerances.push(tolerance); } else code[k] = side;
        }
        let pieces = [parent.poly];
        crossing.forEach((k, index) => {
          const cut = [];
          for (const piece of pieces) {
            if (crossingOf(piece, pre[3 * k], pre[3 * k + 1], pre[3 * k + 2], tolerances[index]) !== 2) {
              cut.push(piece);
              continue;
            }
            const s = sidesOf(piece, pre[3 * k], pre[3 * k + 1], pre[3 * k + 2], tolerances[index]);
            cut.push(...cutPolygon(piece, s.values, s.sides));
          }
          pieces = cut;
        });
        if (next.length + pieces.length + (parents.length - r - 1) > maxRegions) {
          throw new PartitionTooLarge(`more than ${maxRegions} regions after layer ${l + 1}`);
        }
        for (const piece of pieces) {
          const pieceCode = code.slice(), [mx, my] = vertexMean(piece);
          for (const k of crossing) pieceCode[k] = pre[3 * k] + pre[3 * k + 1] * mx + pre[3 * k + 2] * my > 0 ? 1 : 0;
          const piecePost = new Float64Array(3 * width);
          for (let k = 0; k < width; k++) {
            if (!pieceCode[k]) continue;
            piecePost[3 * k] = pre[3 * k]; piecePost[3 * k + 1] = pre[3 * k + 1]; piecePost[3 * k + 2] = pre[3 * k + 2];
          }
          next.push({poly: piece, post: piecePost, code: parent.code + pieceCode.join(""), parent: r});
        }
      }
      layers.push({parents, pres, width, count: next.length});
      regions = next;
    }
    const fanIn = net.sizes[nHidden], nOut = net.sizes[nHidden + 1], Wout = eff.W[nHidden], bout = eff.b[nHidden];
    for (const region of regions) { // the logits as affine maps, (n_out x 3)
      const out = new Float64Array(3 * nOut);
      for (let o = 0; o < nOut; o++) {
        let c = bout[o], a1 = 0, a2 = 0;
        for (let j = 0; j < fanIn; j++) {
          const w = Wout[o * fanIn + j];
          c += w * region.post[3 * j]; a1 += w * region.post[3 * j + 1]; a2 += w * region.post[3 * j + 2];
        }
        out[3 * o] = c; out[3 * o + 1] = a1; out[3 * o + 2] = a2;
      }
      region.out = out;
      const [mx, my] = vertexMean(region.poly);
      region.label = (out[3] - out[0]) + (out[4] - out[1]) * mx + (out[5] - out[2]) * my > 0 ? 1 : 0;
    }
    return {bounds, frame, layers, regions, splines: layers.map((layer) => splinesOf(layer, frame)),
      boundary: boundaryOf(regions, frame)};
  }

  /** Every node's spline on a layer: one segment per parent region its line crosses (Partition.spline_segments). */
  function splinesOf(layer, frame) {
    const nodes = [];
    for (let k = 0; k < layer.width; k++) {
      const segments = [];
      layer.parents.forEach((parent, r) => {
        const pre = layer.pres[r], segment = clipLine(parent.poly, pre[3 * k], pre[3 * k + 1], pre[3 * k + 2], frame);
        if (segment) segments.push(segment);
      });
      nodes.push(segments);
    }
    return nodes;
  }

  /** The decision boundary {f_0 = f_1} as segments (Partition.boundary_segments with two outputs). */
  function boundaryOf(regions, frame) {
    const segments = [];
    for (const region of regions) {
      const o = region.out, segment = clipLine(region.poly, o[0] - o[3], o[1] - o[4], o[2] - o[5], frame);
      if (segment) segments.push(segment);
    }
    return segments;
  }

  // ---------------------------------------------------------------- training
  /** Mean cross-entropy and its gradients on the samples ``indices`` (effective weights: pruned units are absent). */
  function lossAndGradients(net, data, indices, withGradients) {
    const eff = effective(net), nLayers = eff.W.length, buffers = buffersFor(eff.sizes);
    const gW = eff.W.map((w) => new Float64Array(w.length)), gb = eff.b.map((v) => new Float64Array(v.length));
    const deltas = eff.sizes.slice(1).map((width) => new Float64Array(width)), point = new Float64Array(2);
    let loss = 0, correct = 0;
    for (const index of indices) {
      const y = data.y[index];
      point[0] = data.x[index][0];
      point[1] = data.x[index][1];
      forwardInto(eff, point[0], point[1], buffers);
      const logits = buffers[nLayers - 1].z, top = Math.max(logits[0], logits[1]);
      const lse = top + Math.log(Math.exp(logits[0] - top) + Math.exp(logits[1] - top));
      loss += lse - logits[y];
      if ((logits[1] > logits[0] ? 1 : 0) === y) correct += 1;
      if (!withGradients) continue;
      const last = deltas[nLayers - 1];
      for (let o = 0; o < logits.length; o++) last[o] = (Math.exp(logits[o] - lse) - (o === y ? 1 : 0)) / indices.length;
      for (let l = nLayers - 1; l >= 0; l--) {
        const fanIn = eff.sizes[l], input = l === 0 ? point : buffers[l - 1].a, delta = deltas[l];
        for (let k = 0; k < delta.length; k++) {
          gb[l][k] += delta[k];
          for (let j = 0; j < fanIn; j++) gW[l][k * fanIn + j] += delta[k] * input[j];
        }
        if (l === 0) break;
        const back = deltas[l - 1], below = buffers[l - 1].z;
        for (let j = 0; j < fanIn; j++) {
          back[j] = 0;
          if (!(below[j] > 0)) continue; // ReLU's derivative, 0 at 0 as in torch
          let sum = 0;
          for (let k = 0; k < delta.length; k++) sum += eff.W[l][k * fanIn + j] * delta[k];
          back[j] = sum;
        }
      }
    }
    return {loss: loss / Math.max(indices.length, 1), accuracy: correct / Math.max(indices.length, 1), gW, gb};
  }

  /** Per parameter array, 1 where the parameter belongs to a pruned unit (it is not trained). */
  function frozenMasks(net) {
    const W = net.W.map((w) => new Uint8Array(w.length)), b = net.b.map((v) => new Uint8Array(v.length));
    net.keep.forEach((keep, l) => keep.forEach((on, k) => {
      if (on) return;
      const fanIn = net.sizes[l], width = net.sizes[l + 1];
      W[l].fill(1, k * fanIn, (k + 1) * fanIn);
      b[l][k] = 1;
      for (let o = 0; o < net.sizes[l + 2]; o++) W[l + 1][o * width + k] = 1;
    }));
    return [...W, ...b];
  }

  /** torch.optim.SGD (momentum 0 or 0.9) and torch.optim.Adam (betas 0.9, 0.999, eps 1e-8), one step. */
  function optimizerStep(net, optimizer, grads) {
    const params = [...net.W, ...net.b], gradients = [...grads.gW, ...grads.gb], frozen = frozenMasks(net);
    if (!optimizer.state) {
      optimizer.state = params.map((p) => ({m: new Float64Array(p.length), v: new Float64Array(p.length)}));
      optimizer.t = 0;
    }
    optimizer.t += 1;
    const lr = optimizer.lr, t = optimizer.t;
    params.forEach((p, index) => {
      const g = gradients[index], {m, v} = optimizer.state[index], skip = frozen[index];
      for (let i = 0; i < p.length; i++) {
        if (skip[i]) continue;
        if (optimizer.kind === "sgd") {
          p[i] -= lr * g[i];
        } else if (optimizer.kind === "momentum") {
          m[i] = t === 1 ? g[i] : 0.9 * m[i] + g[i];
          p[i] -= lr * m[i];
        } else {
          m[i] += (1 - 0.9) * (g[i] - m[i]); // torch: exp_avg.lerp_(grad, 1 - beta1)
          v[i] = v[i] * 0.999 + (1 - 0.999) * g[i] * g[i];
          const stepSize = lr / (1 - Math.pow(0.9, t)), correction = Math.sqrt(1 - Math.pow(0.999, t));
          p[i] -= stepSize * m[i] / (Math.sqrt(v[i]) / correction + 1e-8);
        }
      }
    });
  }

  // ---------------------------------------------------------------- pruning criteria (spline_utils.pruning, .spline_pruning)
  /** Python's round(): halves to even. */
  function roundHalfEven(value) {
    const floor = Math.floor(value), fraction = value - floor;
    if (fraction > 0.5) return floor + 1;
    if (fraction < 0.5) return floor;
    return floor % 2 === 0 ? floor : floor + 1;
  }

  /** pruning.magnitude_scores: the L2 norm of each unit's incoming weights, per hidden layer. */
  function magnitudeScores(net) {
    return net.keep.map((keep, l) => Array.from(keep, (_, k) => {
      let sum = 0;
      for (let j = 0; j < net.sizes[l]; j++) sum += net.W[l][k * net.sizes[l] + j] ** 2;
      return Math.sqrt(sum);
    }));
  }

  /** pruning.select_nodes(scores, ratio, "layerwise"): keep the highest, ties pruned in index order. */
  function keepHighest(scores, ratio) {
    const n = scores.length, nKeep = Math.max(n - roundHalfEven(ratio * n), 1);
    const order = scores.map((s, k) => k).sort((i, j) => scores[i] - scores[j] || i - j);
    const keep = new Uint8Array(n);
    order.slice(n - nKeep).forEach((k) => { keep[k] = 1; });
    return keep;
  }

  /** spline_pruning.parameter_distances: N(k, k') = min_s ||theta_k - s theta_k'||_1, theta = (w, b) / ||w||_2. */
  function splineDistances(net, l) {
    const fanIn = net.sizes[l], width = net.sizes[l + 1], theta = [];
    for (let k = 0; k < width; k++) {
      const row = Array.from({length: fanIn}, (_, j) => net.W[l][k * fanIn + j]);
      row.push(net.b[l][k]);
      const norm = Math.sqrt(row.slice(0, fanIn).reduce((s, w) => s + w * w, 0));
      theta.push(row.map((v) => (norm > 0 ? v / norm : 0)));
    }
    return theta.map((a, k) => theta.map((c, q) => {
      if (k === q) return Infinity;
      let same = 0, flipped = 0;
      for (let i = 0; i < a.length; i++) { same += Math.abs(a[i] - c[i]); flipped += Math.abs(a[i] + c[i]); }
      return Math.min(same, flipped);
    }));
  }

  /** spline_pruning.spline_keep_masks(parameter distances, ratio, "layerwise"): greedy, most redundant first. */
  function splineKeep(net, l, ratio) {
    const distance = splineDistances(net, l), width = distance.length, keep = new Uint8Array(width).fill(1);
    for (let step = 0; step < Math.min(roundHalfEven(ratio * width), width - 1); step++) {
      let best = -1, bestValue = Infinity;
      for (let k = 0; k < width; k++) {
        if (!keep[k]) continue;
        let nearest = Infinity;
        for (let q = 0; q < width; q++) if (keep[q] && distance[k][q] < nearest) nearest = distance[k][q];
        if (nearest < bestValue || best < 0) { best = k; bestValue = nearest; }
      }
      keep[best] = 0;
    }
    return keep;
  }

  function keepMasks(net, criterion, ratio) {
    if (criterion === "spline") return net.keep.map((_, l) => splineKeep(net, l, ratio));
    return magnitudeScores(net).map((scores) => keepHighest(scores, ratio));
  }

  // ---------------------------------------------------------------- the task's points
  function taskData(name, n, seed) {
    const task = TASKS[name], random = mulberry32(seed), [x0, x1, y0, y1] = task.bounds, x = [], y = [];
    for (let i = 0; i < n; i++) {
      const px = x0 + (x1 - x0) * random(), py = y0 + (y1 - y0) * random();
      x.push([px, py]);
      y.push(task.inside(px, py) ? 1 : 0);
    }
    return {x, y, added: 0};
  }

  // ---------------------------------------------------------------- the page
  function setUp(root) {
    const $ = (selector) => root.querySelector(selector);
    const canvas = $("canvas"), context = canvas.getContext("2d");
    const ui = {
      task: $("#pg-task"), layers: $("#pg-layers"), width: $("#pg-width"), optimizer: $("#pg-optimizer"),
      lr: $("#pg-lr"), seed: $("#pg-seed"), play: $("#pg-play"), step: $("#pg-step"), reset: $("#pg-reset"),
      view: $("#pg-view"), showBoundary: $("#pg-boundary"), units: $("#pg-units"), criterion: $("#pg-criterion"),
      ratio: $("#pg-ratio"), ratioValue: $("#pg-ratio-value"), retrain: $("#pg-retrain"), restore: $("#pg-restore"),
      info: $("#pg-info"), numbers: {regions: $("#pg-regions"), perLayer: $("#pg-per-layer"),
        accuracy: $("#pg-accuracy"), loss: $("#pg-loss"), steps: $("#pg-steps"), hamming: $("#pg-hamming")},
      status: $("#pg-status"), summary: $("#pg-summary"),
    };
    const state = {net: null, data: null, bounds: null, optimizer: null, steps: 0, part: null, error: null,
      playing: false, history: [], highlight: null, selected: null, cursor: null, mode: "inspect", batch: 32,
      order: [], orderPosition: 0, random: mulberry32(1)};

    function readOptimizer() {
      return {kind: ui.optimizer.value, lr: Number(ui.lr.value), state: null, t: 0};
    }

    function resetAll() {
      const seed = Math.max(0, Math.floor(Number(ui.seed.value) || 0));
      const hidden = Array(Number(ui.layers.value)).fill(Number(ui.width.value));
      state.net = makeNetwork(hidden, seed + 1);
      state.data = taskData(ui.task.value, 300, seed);
      state.bounds = TASKS[ui.task.value].bounds.slice();
      state.random = mulberry32(seed + 2);
      restart();
    }

    /** After a change of network or data: fresh optimizer, step count, code history, batch order. */
    function restart() {
      state.optimizer = readOptimizer();
      state.steps = 0;
      state.history = [];
      state.order = [];
      state.selected = null;
      ui.ratio.value = 0;
      ui.ratioValue.textContent = "0 %";
      buildUnits();
      buildViews();
      refresh();
    }

    // ---------- training
    function nextBatch(full) {
      const n = state.data.x.length;
      if (full || state.batch >= n) return Array.from({length: n}, (_, i) => i);
      const batch = [];
      while (batch.length < state.batch) {
        if (state.orderPosition >= state.order.length) { // a new epoch: a seeded shuffle
          state.order = Array.from({length: n}, (_, i) => i);
          for (let i = n - 1; i > 0; i--) {
            const j = Math.floor(state.random() * (i + 1));
            [state.order[i], state.order[j]] = [state.order[j], state.order[i]];
          }
          state.orderPosition = 0;
        }
        batch.push(state.order[state.orderPosition++]);
      }
      return batch;
    }

    function trainSteps(count, full) {
      for (let s = 0; s < count; s++) {
        const grads = lossAndGradients(state.net, state.data, nextBatch(full), true);
        optimizerStep(state.net, state.optimizer, grads);
        state.steps += 1;
        recordCodes();
      }
    }

    // ---------- the early-bird signal: codes on a probe grid, a few steps apart (spline_utils.codes)
    function probePoints() {
      const [x0, x1, y0, y1] = state.bounds, points = [];
      for (let i = 0; i < PROBE_SIDE; i++) {
        for (let j = 0; j < PROBE_SIDE; j++) {
          points.push([x0 + (j + 0.5) * (x1 - x0) / PROBE_SIDE, y0 + (i + 0.5) * (y1 - y0) / PROBE_SIDE]);
        }
      }
      return points;
    }

    /** Codes of the probe grid, kept units only: per hidden layer a Uint8Array (n_points x n_kept, row-major). */
    function probeCodes() {
      const eff = effective(state.net), points = probePoints(), buffers = buffersFor(eff.sizes);
      const kept = state.net.keep.map((keep) => Array.from(keep.keys()).filter((k) => keep[k]));
      const layers = kept.map((units) => new Uint8Array(points.length * units.length));
      points.forEach(([x, y], i) => {
        forwardInto(eff, x, y, buffers);
        kept.forEach((units, l) => {
          const z = buffers[l].z, row = i * units.length;
          units.forEach((k, column) => { layers[l][row + column] = z[k] > 0 ? 1 : 0; });
        });
      });
      return layers;
    }

    /** Codes as one "0"/"1" string per probe point and layer (for the test API). */
    function codeStrings(layers) {
      const n = PROBE_SIDE * PROBE_SIDE;
      return layers.map((codes) => Array.from({length: n}, (_, i) => {
        const width = codes.length / n;
        return codes.subarray(i * width, (i + 1) * width).join("");
      }));
    }

    function maskKey() {
      return state.net.keep.map((keep) => keep.join("")).join("|");
    }

    function recordCodes() {
      const key = maskKey();
      if (state.history.length && state.history[0].key !== key) state.history = [];
      state.history.unshift({key, step: state.steps, codes: probeCodes()});
      state.history.length = Math.min(state.history.length, HAMMING_LAG + 1);
    }

    /** codes.network_distance: per layer, the fraction of (probe point, unit) codes that differ; mean over layers. */
    function networkDistance(a, b) {
      let total = 0;
      a.forEach((codes, l) => {
        let differ = 0;
        for (let i = 0; i < codes.length; i++) differ += codes[i] !== b[l][i] ? 1 : 0;
        total += codes.length ? differ / codes.length : 0;
      });
      return total / a.length;
    }

    function hamming() {
      if (state.history.length <= HAMMING_LAG) return null;
      return networkDistance(state.history[0].codes, state.history[HAMMING_LAG].codes);
    }

    // ---------- recompute and draw
    function refresh() {
      try {
        state.part = partition(state.net, state.bounds, MAX_REGIONS);
        state.error = null;
      } catch (error) {
        if (!(error instanceof PartitionTooLarge)) throw error;
        state.part = null;
        state.error = error.message;
      }
      const all = Array.from({length: state.data.x.length}, (_, i) => i);
      state.fit = lossAndGradients(state.net, state.data, all, false);
      draw();
      showNumbers();
      showRegion();
      updateUnits();
    }

    function showNumbers() {
      const part = state.part, n = ui.numbers;
      n.regions.textContent = part ? String(part.regions.length) : "too many";
      n.perLayer.textContent = part ? part.layers.map((layer) => layer.count).join(" / ") : "";
      n.accuracy.textContent = `${(100 * state.fit.accuracy).toFixed(1)} %`;
      n.loss.textContent = state.fit.loss.toFixed(4);
      n.steps.textContent = String(state.steps);
      const distance = hamming();
      n.hamming.textContent = distance === null ? `(after ${HAMMING_LAG} steps)` : distance.toFixed(4);
      ui.status.textContent = state.error ? `The partition has ${state.error}; use fewer units.` : "";
      ui.summary.textContent = `${part ? part.regions.length : "too many"} regions · ` +
        `${(100 * state.fit.accuracy).toFixed(1)} % · step ${state.steps}`;
    }

    /** The sticky picture (phones) sits under the article's sticky header: measure its height. */
    function placeUnderHeader() {
      const header = document.querySelector(".bd-header-article");
      const sticky = header && getComputedStyle(header).position === "sticky";
      root.style.setProperty("--pg-top", `${sticky ? header.getBoundingClientRect().height : 0}px`);
    }

    function size() {
      return canvas.clientWidth || 300;
    }

    function toPixel(x, y, side) {
      const [x0, x1, y0, y1] = state.bounds;
      return [(x - x0) / (x1 - x0) * side, (y1 - y) / (y1 - y0) * side];
    }

    function fromPixel(px, py) {
      const [x0, x1, y0, y1] = state.bounds, side = size();
      return [x0 + px / side * (x1 - x0), y1 - py / side * (y1 - y0)];
    }

    function draw() {
      const side = size(), ratio = window.devicePixelRatio || 1;
      if (canvas.width !== Math.round(side * ratio)) {
        canvas.width = Math.round(side * ratio);
        canvas.height = Math.round(side * ratio);
      }
      context.setTransform(ratio, 0, 0, ratio, 0, 0);
      context.fillStyle = "#ffffff";
      context.fillRect(0, 0, side, side);
      const part = state.part, view = ui.view.value;
      const polygon = (poly) => {
        context.beginPath();
        for (let i = 0; i < poly.length / 2; i++) {
          const [px, py] = toPixel(poly[2 * i], poly[2 * i + 1], side);
          if (i === 0) context.moveTo(px, py); else context.lineTo(px, py);
        }
        context.closePath();
      };
      if (part) {
        part.regions.forEach((region, r) => { // pale class colours, each region a slightly different shade
          const shade = ((r * 2654435761) >>> 0) / 4294967296 * 14 - 7;
          context.fillStyle = region.label ? `hsl(28, 90%, ${88 + shade / 2}%)` : `hsl(214, 60%, ${90 + shade / 2}%)`;
          polygon(region.poly);
          context.fill();
        });
      }
      state.data.x.forEach(([x, y], i) => {
        const [px, py] = toPixel(x, y, side), added = i >= state.data.x.length - state.data.added;
        context.beginPath();
        context.arc(px, py, added ? 4.5 : 2.6, 0, 2 * Math.PI);
        context.fillStyle = state.data.y[i] ? "#222222" : "#ffffff";
        context.fill();
        context.lineWidth = added ? 1.6 : 0.9;
        context.strokeStyle = state.data.y[i] ? "#222222" : "#555555";
        context.stroke();
      });
      const segments = (list, colour, width) => {
        context.strokeStyle = colour;
        context.lineWidth = width;
        context.beginPath();
        for (const s of list) {
          const [ax, ay] = toPixel(s[0], s[1], side), [bx, by] = toPixel(s[2], s[3], side);
          context.moveTo(ax, ay);
          context.lineTo(bx, by);
        }
        context.stroke();
      };
      if (part) {
        part.splines.forEach((nodes, l) => {
          if (view !== "all" && l > Number(view)) return;
          const current = view === "all" || l === Number(view);
          nodes.forEach((list) => segments(list, current ? LAYER_COLOURS[l] : OLD_GREY, current ? 1.7 : 1.1));
        });
        if (ui.showBoundary.checked) segments(part.boundary, BOUNDARY_RED, 2.6);
        if (state.highlight) segments(part.splines[state.highlight[0]][state.highlight[1]], "#000000", 3.2);
        const region = selectedRegion();
        if (region) {
          polygon(region.poly);
          context.strokeStyle = "#000000";
          context.lineWidth = 1.6;
          context.setLineDash([5, 3]);
          context.stroke();
          context.setLineDash([]);
        }
      }
      if (state.cursor) { // the keyboard's crosshair
        const [px, py] = toPixel(state.cursor[0], state.cursor[1], side);
        context.strokeStyle = "#000000";
        context.lineWidth = 1.5;
        context.beginPath();
        context.moveTo(px - 8, py); context.lineTo(px + 8, py); context.moveTo(px, py - 8); context.lineTo(px, py + 8);
        context.stroke();
      }
    }

    function selectedRegion() {
      if (!state.part || !state.selected) return null;
      return state.part.regions.find((region) => containsPoint(region.poly, state.selected[0], state.selected[1]));
    }

    function affineText(c, a1, a2) {
      const term = (value, name) => `${value < 0 ? "−" : "+"} ${Math.abs(value).toPrecision(3)} ${name}`;
      return `${a1.toPrecision(3)} x₁ ${term(a2, "x₂")} ${c < 0 ? "−" : "+"} ${Math.abs(c).toPrecision(3)}`;
    }

    function showRegion() {
      const region = selectedRegion();
      if (!region) {
        ui.info.textContent = state.selected ? "That point is outside the partition." :
          "Hover over, tap or move the keyboard cursor to a region to read its activation code and affine map.";
        return;
      }
      let start = 0;
      const groups = state.net.keep.map((keep) => {
        const part = region.code.slice(start, start + keep.length);
        start += keep.length;
        return Array.from(part, (bit, k) => (keep[k] ? bit : "·")).join("");
      });
      const o = region.out;
      ui.info.innerHTML = "";
      const lines = [
        `Region ${state.part.regions.indexOf(region) + 1} of ${state.part.regions.length}, predicted class ${region.label}.`,
        `Activation code (layer by layer, · = pruned): ${groups.join(" | ")}`,
        `f₀(x) = ${affineText(o[0], o[1], o[2])}`,
        `f₁(x) = ${affineText(o[3], o[4], o[5])}`,
      ];
      for (const text of lines) {
        const line = document.createElement("div");
        line.textContent = text;
        ui.info.appendChild(line);
      }
    }

    // ---------- the units: click to prune
    function buildUnits() {
      ui.units.innerHTML = "";
      state.net.keep.forEach((keep, l) => {
        const row = document.createElement("div"), label = document.createElement("span");
        row.className = "pg-unit-row";
        row.setAttribute("role", "group");
        row.setAttribute("aria-label", `Units of layer ${l + 1}`);
        label.className = "pg-unit-label";
        label.textContent = `Layer ${l + 1}`;
        label.style.color = LAYER_COLOURS[l];
        row.appendChild(label);
        keep.forEach((_, k) => {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "pg-unit";
          button.textContent = String(k + 1);
          button.dataset.layer = l;
          button.dataset.unit = k;
          button.style.setProperty("--pg-colour", LAYER_COLOURS[l]);
          button.addEventListener("click", () => { togglePrune(l, k); });
          const show = () => { state.highlight = [l, k]; draw(); };
          const hide = () => { state.highlight = null; draw(); };
          button.addEventListener("mouseenter", show);
          button.addEventListener("focus", show);
          button.addEventListener("mouseleave", hide);
          button.addEventListener("blur", hide);
          row.appendChild(button);
        });
        ui.units.appendChild(row);
      });
    }

    function updateUnits() {
      ui.units.querySelectorAll("button.pg-unit").forEach((button) => {
        const l = Number(button.dataset.layer), k = Number(button.dataset.unit), pruned = !state.net.keep[l][k];
        const pieces = state.part ? state.part.splines[l][k].length : 0;
        button.setAttribute("aria-pressed", pruned ? "true" : "false");
        button.setAttribute("aria-label", `Layer ${l + 1} unit ${k + 1}: ${pruned ? "pruned" : "kept"}, ` +
          `its spline has ${pieces} piece${pieces === 1 ? "" : "s"}. Press to ${pruned ? "restore" : "prune"} it.`);
      });
    }

    function togglePrune(l, k, pruned) {
      const keep = state.net.keep[l];
      const value = pruned === undefined ? (keep[k] ? 0 : 1) : (pruned ? 0 : 1);
      if (!value && keep.reduce((a, b) => a + b, 0) <= 1) {
        ui.status.textContent = "A layer keeps at least one unit.";
        return false;
      }
      keep[k] = value;
      refresh();
      return true;
    }

    function buildViews() {
      const current = ui.view.value;
      ui.view.innerHTML = "";
      const add = (value, text) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = text;
        ui.view.appendChild(option);
      };
      add("all", "every layer in its colour");
      state.net.keep.forEach((_, l) => add(String(l), `layer ${l + 1} (earlier layers grey)`));
      ui.view.value = [...ui.view.options].some((o) => o.value === current) ? current : "all";
      root.querySelectorAll(".pg-legend [data-layer]").forEach((entry) => {
        entry.hidden = Number(entry.dataset.layer) >= state.net.keep.length;
      });
    }

    function applyRatio() {
      const ratio = Number(ui.ratio.value) / 100;
      ui.ratioValue.textContent = `${ui.ratio.value} %`;
      keepMasks(state.net, ui.criterion.value, ratio).forEach((mask, l) => state.net.keep[l].set(mask));
      refresh();
    }

    // ---------- play, pause, step
    function setPlaying(playing) {
      state.playing = playing;
      ui.play.textContent = playing ? "Pause" : "Play";
      ui.play.setAttribute("aria-pressed", playing ? "true" : "false");
      if (playing) requestAnimationFrame(tick);
    }

    function tick() {
      if (!state.playing) return;
      trainSteps(5);
      refresh();
      requestAnimationFrame(tick);
    }

    // ---------- pointer, touch and keyboard on the picture
    function actAt(x, y) {
      if (state.mode === "inspect") {
        state.selected = [x, y];
      } else {
        state.data.x.push([x, y]);
        state.data.y.push(state.mode === "add1" ? 1 : 0);
        state.data.added += 1;
        state.order = [];
      }
      refresh();
    }

    canvas.addEventListener("click", (event) => {
      const box = canvas.getBoundingClientRect();
      actAt(...fromPixel(event.clientX - box.left, event.clientY - box.top));
    });
    canvas.addEventListener("mousemove", (event) => {
      if (state.mode !== "inspect") return;
      const box = canvas.getBoundingClientRect();
      state.selected = fromPixel(event.clientX - box.left, event.clientY - box.top);
      draw();
      showRegion();
    });
    canvas.addEventListener("keydown", (event) => {
      const [x0, x1, y0, y1] = state.bounds, stepX = (x1 - x0) / 40, stepY = (y1 - y0) / 40;
      const cursor = state.cursor || [(x0 + x1) / 2, (y0 + y1) / 2];
      const moves = {ArrowLeft: [-stepX, 0], ArrowRight: [stepX, 0], ArrowUp: [0, stepY], ArrowDown: [0, -stepY]};
      if (moves[event.key]) {
        cursor[0] = Math.min(x1, Math.max(x0, cursor[0] + moves[event.key][0]));
        cursor[1] = Math.min(y1, Math.max(y0, cursor[1] + moves[event.key][1]));
        state.cursor = cursor;
        if (state.mode === "inspect") state.selected = cursor.slice();
        draw();
        showRegion();
      } else if (event.key === "Enter" || event.key === " ") {
        state.cursor = cursor;
        actAt(cursor[0], cursor[1]);
      } else if (event.key === "Escape") {
        state.cursor = null;
        state.selected = null;
        draw();
        showRegion();
      } else {
        return;
      }
      event.preventDefault();
    });
    canvas.addEventListener("blur", () => { state.cursor = null; draw(); });

    root.querySelectorAll("input[name=pg-mode]").forEach((radio) => radio.addEventListener("change", () => {
      state.mode = radio.value;
    }));
    ui.play.addEventListener("click", () => setPlaying(!state.playing));
    ui.step.addEventListener("click", () => { trainSteps(1); refresh(); });
    ui.reset.addEventListener("click", () => { setPlaying(false); resetAll(); });
    [ui.task, ui.layers, ui.width, ui.seed].forEach((control) => control.addEventListener("change", () => {
      setPlaying(false);
      resetAll();
    }));
    [ui.optimizer, ui.lr].forEach((control) => control.addEventListener("change", () => {
      state.optimizer = readOptimizer();
    }));
    ui.view.addEventListener("change", draw);
    ui.showBoundary.addEventListener("change", draw);
    ui.ratio.addEventListener("input", applyRatio);
    ui.criterion.addEventListener("change", applyRatio);
    ui.retrain.addEventListener("click", () => { state.optimizer = readOptimizer(); setPlaying(true); });
    ui.restore.addEventListener("click", () => {
      state.net.keep.forEach((keep) => keep.fill(1));
      ui.ratio.value = 0;
      ui.ratioValue.textContent = "0 %";
      refresh();
    });
    window.addEventListener("resize", () => { placeUnderHeader(); draw(); });
    placeUnderHeader();

    resetAll();
    root.classList.add("pg-ready");

    // ---------------------------------------------------------------- the test API
    const segmentsOut = (list) => list.map((s) => [[s[0], s[1]], [s[2], s[3]]]);
    window.playground = {
      /** Replace the network: {weights: [W_1, ..., W_out] (each fan_out x fan_in), biases, keep?, bounds?}. */
      setWeights(spec) {
        const W = spec.weights.map((w) => Float64Array.from(w.flat()));
        const sizes = [spec.weights[0][0].length, ...spec.weights.map((w) => w.length)];
        if (sizes[0] !== 2 || sizes[sizes.length - 1] !== 2 || sizes.length < 3) {
          throw new Error(`need a 2-...-2 network with hidden layers, got sizes ${sizes}`);
        }
        const keep = sizes.slice(1, -1).map((width, l) => Uint8Array.from(spec.keep ? spec.keep[l] : Array(width).fill(1)));
        state.net = {sizes, W, b: spec.biases.map((v) => Float64Array.from(v)), keep};
        if (spec.bounds) state.bounds = spec.bounds.slice();
        setPlaying(false);
        restart();
      },
      getWeights() {
        return {weights: state.net.W.map((w, l) => Array.from({length: state.net.sizes[l + 1]},
          (_, k) => Array.from(w.slice(k * state.net.sizes[l], (k + 1) * state.net.sizes[l])))),
        biases: state.net.b.map((v) => Array.from(v)), keep: state.net.keep.map((k) => Array.from(k))};
      },
      /** Replace the training points (and optionally the domain): points (n x 2), labels (n) in {0, 1}. */
      setData(points, labels, bounds) {
        state.data = {x: points.map((p) => [p[0], p[1]]), y: labels.map(Number), added: 0};
        if (bounds) state.bounds = bounds.slice();
        restart();
      },
      /** A fresh optimizer: kind "sgd", "momentum" (0.9) or "adam", learning rate lr. */
      setOptimizer(kind, lr) {
        if (!["sgd", "momentum", "adam"].includes(kind) || !(lr > 0)) throw new Error(`no optimizer ${kind}, ${lr}`);
        state.optimizer = {kind, lr, state: null, t: 0};
      },
      /** Region count, the sorted codes ("0"/"1" per hidden node in layer order; pruned units read 0), and more. */
      state() {
        const part = state.part;
        return {regions: part ? part.regions.length : null, error: state.error,
          codes: part ? part.regions.map((region) => region.code).sort() : [],
          regionsPerLayer: part ? part.layers.map((layer) => layer.count) : [], sizes: state.net.sizes.slice(),
          keep: state.net.keep.map((k) => Array.from(k)), bounds: state.bounds.slice(), steps: state.steps,
          loss: state.fit.loss, accuracy: state.fit.accuracy, hamming: hamming(), points: state.data.x.length};
      },
      /** Layer ``layer``'s splines: one list of segments [[x0, y0], [x1, y1]] per node. */
      splines(layer) {
        return state.part.splines[layer].map(segmentsOut);
      },
      boundary() {
        return segmentsOut(state.part.boundary);
      },
      /** ``steps`` optimizer steps (mini-batches of 32, or the whole set with full); the loss on all points after. */
      train(steps, full) {
        trainSteps(steps, full);
        refresh();
        return state.fit.loss;
      },
      loss() {
        return state.fit.loss;
      },
      prune(layer, unit, pruned = true) {
        return togglePrune(layer, unit, pruned);
      },
      /** Prune by the slider's rule: criterion "magnitude" or "spline", ratio in [0, 0.9]; returns the keep masks. */
      pruneBy(criterion, ratio) {
        ui.criterion.value = criterion;
        ui.ratio.value = String(Math.round(ratio * 100));
        applyRatio();
        return state.net.keep.map((k) => Array.from(k));
      },
      probe() {
        return {points: probePoints(), codes: codeStrings(probeCodes())};
      },
      history() {
        return state.history.map((entry) => ({step: entry.step, codes: codeStrings(entry.codes)}));
      },
    };
  }

  function start() {
    const root = document.getElementById("playground");
    if (root) setUp(root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
