/**
 * Plots as SVG (vega-lite compiled and rendered headless in Node) plus a PNG of the same drawing
 * rendered by resvg, for viewers that do not show SVG.
 */
import { writeFile } from 'node:fs/promises';

import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import type { ExperimentResult } from './report.js';

const ORDER = ['overlay', 'tmpfs', 'mmap', 'ephemera'];
const COLORS = ['#8c8c8c', '#4c78a8', '#f58518', '#54a24b'];

/** The vega-lite spec of an experiment's result (exported for tests and for reuse in docs). */
export function plotSpec(e: ExperimentResult, metricTitles: Readonly<Record<string, string>>): TopLevelSpec {
  if (e.intensity !== null) {
    const values = e.intensity.flatMap((r) => [
      { workload: r.label, source: 'measured here', pct: r.intensityPct },
      ...(r.paperPct !== null ? [{ workload: r.label, source: 'paper', pct: r.paperPct }] : []),
    ]);
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: e.title,
      data: { values },
      mark: 'bar',
      encoding: {
        y: { field: 'workload', type: 'nominal', title: null },
        yOffset: { field: 'source' },
        x: { field: 'pct', type: 'quantitative', title: 'I/O intensity (%)' },
        color: { field: 'source', type: 'nominal', title: null },
      },
      width: 420,
    };
  }
  const values = e.cells
    .filter((c) => !c.id.endsWith('/strace'))
    .flatMap((c) =>
      Object.entries(metricTitles).flatMap(([key, title]) => {
        const s = c.metrics[key];
        return s === undefined ? [] : [{ group: c.label, metric: title, contender: c.contender, median: s.median, min: s.min, max: s.max }];
      }),
    );
  const contenders = ORDER.filter((c) => values.some((v) => v.contender === c));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: e.title,
    data: { values },
    facet: {
      column: { field: 'group', type: 'nominal', title: null, sort: [...new Set(values.map((v) => v.group))] },
      row: { field: 'metric', type: 'nominal', title: null, sort: Object.values(metricTitles) },
    },
    spec: {
      width: 38 * contenders.length,
      height: 160,
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'contender', type: 'nominal', sort: contenders, title: null, axis: { labelAngle: -40 } },
            y: { field: 'median', type: 'quantitative', title: 'median (s)' },
            color: { field: 'contender', type: 'nominal', sort: contenders, scale: { domain: contenders, range: COLORS.filter((_, i) => contenders.includes(ORDER[i] ?? '')) }, legend: null },
          },
        },
        {
          mark: { type: 'rule', color: 'black' },
          encoding: {
            x: { field: 'contender', type: 'nominal', sort: contenders },
            y: { field: 'min', type: 'quantitative' },
            y2: { field: 'max' },
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Renders the spec to `base.svg` and `base.png`; returns the paths written. */
export async function writePlot(spec: TopLevelSpec, base: string): Promise<string[]> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  await writeFile(`${base}.svg`, svg);
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white', font: { loadSystemFonts: true } }).render().asPng();
  await writeFile(`${base}.png`, png);
  return [`${base}.svg`, `${base}.png`];
}
