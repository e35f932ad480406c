// The debug overlay: what the netcode is doing, live. Ten times a second it samples the
// engine's own counters and plots the last ten seconds as sparklines (plain canvas, no chart
// library), with the network switch that puts core's link conditioner under it all.
import type { LinkStats } from '@tickwire/core';
import type { ArenaSession } from './net.js';
import { NETWORK_PRESETS, type NetworkPresetName } from './network.js';

const SAMPLE_HZ = 10;
const HISTORY = 10 * SAMPLE_HZ;
/** Rates (bandwidth, bytes per snapshot, loss) are measured over the last second. */
const RATE_WINDOW = SAMPLE_HZ;

interface Plot {
  label: string;
  /** Each series' colour; a plot has one or two series. */
  colours: readonly string[];
  /**
   * The y axis spans at least this much (so noise does not fill the plot): from 0 up, or, with
   * `fit`, around the values (for a figure far from 0 whose changes matter, like the offset).
   */
  minScale: number;
  fit: boolean;
  format(values: readonly number[]): string;
  series: number[][];
  canvas: HTMLCanvasElement;
  value: HTMLElement;
}

/** Cumulative counters, one entry per sample, to take deltas over the rate window. */
interface Counters {
  bytesIn: number;
  bytesOut: number;
  snapshots: number;
  outbound: LossCounters;
  inbound: LossCounters;
}

interface LossCounters {
  attempts: number;
  lost: number;
}

export interface DebugOverlay {
  readonly visible: boolean;
  setVisible(visible: boolean): void;
  toggle(): void;
  /** Marks the preset in force in the network switch. */
  showPreset(name: NetworkPresetName): void;
  dispose(): void;
}

const round = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toFixed(digits) : '—';
const bytes = (value: number): string =>
  !Number.isFinite(value)
    ? '—'
    : value >= 10_000
      ? `${(value / 1000).toFixed(1)} kB`
      : `${Math.round(value)} B`;

// A lost attempt of a reliable packet is simulated as a retransmission: count it as a loss too.
const lossOf = (stats: Readonly<LinkStats>): LossCounters => ({
  attempts: stats.sent + stats.retransmitted,
  lost: stats.lost + stats.queueDropped + stats.retransmitted,
});

export function createDebugOverlay(options: {
  root: HTMLElement;
  toggleButton: HTMLElement;
  session: () => ArenaSession | null;
  onPreset(name: NetworkPresetName): void;
}): DebugOverlay {
  const { root, toggleButton } = options;
  const plotsElement = root.querySelector<HTMLElement>('.plots')!;
  const networkElement = root.querySelector<HTMLElement>('.network')!;
  const detailsElement = root.querySelector<HTMLElement>('.details')!;

  const makePlot = (
    label: string,
    colours: readonly string[],
    minScale: number,
    format: Plot['format'],
    fit = false,
  ): Plot => {
    const row = document.createElement('div');
    row.className = 'plot';
    const name = document.createElement('span');
    name.className = 'plot-label';
    name.textContent = label;
    const canvas = document.createElement('canvas');
    const value = document.createElement('span');
    value.className = 'plot-value';
    row.append(name, canvas, value);
    plotsElement.append(row);
    return { label, colours, minScale, fit, format, series: colours.map(() => []), canvas, value };
  };
  const plots = {
    rtt: makePlot('RTT', ['#4fd1ff'], 20, ([v]) => `${round(v!)} ms`),
    // Server minus local clock: its absolute value is the two clocks' epochs; the plot shows
    // how it moves (estimate corrections, drift).
    offset: makePlot('clock offset', ['#9ccc65'], 2, ([v]) => `${round(v!, 1)} ms`, true),
    bandwidth: makePlot(
      'bandwidth in / out',
      ['#ffb347', '#b39ddb'],
      1000,
      ([i, o]) => `${bytes(i!)}/s · ${bytes(o!)}/s`,
    ),
    snapshot: makePlot('bytes / snapshot', ['#ffb347'], 50, ([v]) => bytes(v!)),
    loss: makePlot(
      'packet loss in / out',
      ['#ff5d5d', '#ff8a65'],
      0.05,
      ([i, o]) => `${round(i! * 100, 1)} % · ${round(o! * 100, 1)} %`,
    ),
    correction: makePlot(
      'prediction error',
      ['#fff176'],
      1,
      ([last, mean]) => `${round(last!, 2)} u · mean ${round(mean!, 2)} u`,
    ),
    delay: makePlot('interpolation delay', ['#4dd0e1'], 50, ([v]) => `${round(v!)} ms`),
  };

  const presetButtons = new Map<NetworkPresetName, HTMLButtonElement>();
  for (const [key, preset] of Object.entries(NETWORK_PRESETS)) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = preset.label;
    button.dataset.preset = key;
    button.addEventListener('click', () => options.onPreset(key as NetworkPresetName));
    networkElement.append(button);
    presetButtons.set(key as NetworkPresetName, button);
  }

  const history: Counters[] = [];
  let lastCorrectionSeen = 0;

  const push = (plot: Plot, values: readonly number[]) => {
    for (let i = 0; i < plot.series.length; i++) {
      const series = plot.series[i]!;
      series.push(values[i] ?? Number.NaN);
      if (series.length > HISTORY) series.shift();
    }
    plot.value.textContent = plot.format(values);
  };

  const drawPlot = (plot: Plot) => {
    const ratio = window.devicePixelRatio || 1;
    const width = plot.canvas.clientWidth;
    const height = plot.canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (plot.canvas.width !== Math.round(width * ratio))
      plot.canvas.width = Math.round(width * ratio);
    if (plot.canvas.height !== Math.round(height * ratio))
      plot.canvas.height = Math.round(height * ratio);
    const ctx = plot.canvas.getContext('2d')!;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    let low = plot.fit ? Number.POSITIVE_INFINITY : 0;
    let high = plot.fit ? Number.NEGATIVE_INFINITY : plot.minScale;
    for (const series of plot.series)
      for (const v of series) {
        if (!Number.isFinite(v)) continue;
        if (v < low) low = v;
        if (v > high) high = v;
      }
    if (!Number.isFinite(low) || !Number.isFinite(high)) return;
    if (high - low < plot.minScale) {
      const middle = (high + low) / 2;
      low = plot.fit ? middle - plot.minScale / 2 : low;
      high = low + plot.minScale;
    }
    const scale = (height - 4) / (high - low);
    const yOf = (v: number) => height - 2 - (v - low) * scale;
    if (low < 0 && high > 0) {
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.15)';
      ctx.beginPath();
      ctx.moveTo(0, yOf(0));
      ctx.lineTo(width, yOf(0));
      ctx.stroke();
    }
    const step = width / (HISTORY - 1);
    plot.series.forEach((series, index) => {
      ctx.strokeStyle = plot.colours[index]!;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let drawing = false;
      const offset = HISTORY - series.length;
      series.forEach((v, i) => {
        if (!Number.isFinite(v)) {
          drawing = false;
          return;
        }
        const x = (offset + i) * step;
        const y = yOf(v);
        if (drawing) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
        drawing = true;
      });
      ctx.stroke();
    });
  };

  const sample = () => {
    const session = options.session();
    const arena = session?.arena ?? null;
    const connection = session?.client.stats().connection;
    const conditioned = session?.network.connection ?? null;
    const counters: Counters = {
      bytesIn: connection?.bytesIn ?? 0,
      bytesOut: connection?.bytesOut ?? 0,
      snapshots: arena?.room.replication?.stats.snapshots ?? 0,
      outbound: conditioned ? lossOf(conditioned.outbound.stats) : { attempts: 0, lost: 0 },
      inbound: conditioned ? lossOf(conditioned.inbound.stats) : { attempts: 0, lost: 0 },
    };
    // A new connection or room restarts the counters: so does the window.
    const previous = history[history.length - 1];
    if (
      previous !== undefined &&
      (counters.bytesIn < previous.bytesIn || counters.snapshots < previous.snapshots)
    )
      history.length = 0;
    history.push(counters);
    if (history.length > RATE_WINDOW + 1) history.shift();
    const first = history[0]!;
    const seconds = (history.length - 1) / SAMPLE_HZ;
    const rate = (now: number, then: number) => (seconds > 0 ? (now - then) / seconds : Number.NaN);
    const snapshots = counters.snapshots - first.snapshots;
    const ratio = (now: LossCounters, then: LossCounters) => {
      const attempts = now.attempts - then.attempts;
      return attempts > 0 ? (now.lost - then.lost) / attempts : 0;
    };

    push(plots.rtt, [session?.network.rttMs() ?? Number.NaN]);
    const time = session?.client.time ?? null;
    const timeStats = time?.stats();
    push(plots.offset, [timeStats?.synced ? timeStats.offsetMs : Number.NaN]);
    push(plots.bandwidth, [
      rate(counters.bytesIn, first.bytesIn),
      rate(counters.bytesOut, first.bytesOut),
    ]);
    push(plots.snapshot, [
      snapshots > 0 ? (counters.bytesIn - first.bytesIn) / snapshots : Number.NaN,
    ]);
    // The conditioner knows exactly what it dropped (over the last second); without it, the
    // transport's own estimate (0 on a WebSocket, which never loses: TCP turns loss into delay).
    push(
      plots.loss,
      conditioned !== null
        ? [ratio(counters.inbound, first.inbound), ratio(counters.outbound, first.outbound)]
        : [connection?.lossRate ?? 0, connection?.lossRate ?? 0],
    );
    const player = arena?.player ?? null;
    // The largest correction measured since the last sample (0: the prediction was right).
    let correction = player === null ? Number.NaN : 0;
    if (player !== null && player.corrections.lastAt > lastCorrectionSeen) {
      correction = player.corrections.lastDistance;
      lastCorrectionSeen = player.corrections.lastAt;
    }
    // Plotted: the last correction in each sample (0 when none); beside it, the mean.
    push(plots.correction, [correction, player?.corrections.meanDistance ?? Number.NaN]);
    push(plots.delay, [arena?.interpolation.interpolator.delayMs ?? Number.NaN]);

    const corrections = player?.corrections;
    const interpolatorStats = arena?.interpolation.interpolator.stats();
    detailsElement.textContent = [
      `prediction: ${player?.pending ?? 0} pending inputs, ${corrections?.count ?? 0} corrections (mean ${round(corrections?.meanDistance ?? Number.NaN, 2)} u, max ${round(corrections?.maxDistance ?? Number.NaN, 1)} u), ${player?.prediction.stats.snaps ?? 0} teleports`,
      `interpolation: ${arena?.lastFrame?.mode ?? '—'}, ${interpolatorStats?.underrunFrames ?? 0} underruns, ${interpolatorStats?.extrapolatedFrames ?? 0} extrapolated, ${interpolatorStats?.lateSnapshots ?? 0} late`,
      `clock: ±${round(timeStats?.confidenceMs ?? Number.NaN, 1)} ms, sync RTT ${round(timeStats?.rttMeanMs ?? Number.NaN)} ms, ${timeStats?.samples ?? 0} samples`,
      `session: ${session?.client.stats().connections ?? 0} connections, ${session?.client.stats().replayed ?? 0} frames replayed`,
    ].join('\n');
    if (visible) for (const plot of Object.values(plots)) drawPlot(plot);
  };

  let visible = false;
  const timer = setInterval(sample, 1000 / SAMPLE_HZ);
  const overlay: DebugOverlay = {
    get visible() {
      return visible;
    },
    setVisible(next) {
      visible = next;
      root.hidden = !next;
      toggleButton.setAttribute('aria-pressed', String(next));
      if (next) for (const plot of Object.values(plots)) drawPlot(plot);
    },
    toggle() {
      overlay.setVisible(!visible);
    },
    showPreset(name) {
      for (const [key, button] of presetButtons) button.classList.toggle('active', key === name);
    },
    dispose() {
      clearInterval(timer);
    },
  };
  return overlay;
}
