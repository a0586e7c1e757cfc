// Renders an SVG with a real renderer (rsvg-convert, Debian librsvg2-bin) and
// reads the PNG back, to find what was drawn outside the SVG's own canvas.
// The PNG reader handles what rsvg-convert writes: 8-bit RGBA, not
// interlaced (PNG spec, ISO/IEC 15948: IHDR, IDAT, filters 0-4).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { requireTool, run } from './run.js';

export interface Rgba {
  width: number;
  height: number;
  /** width * height * 4 bytes, row by row. */
  pixels: Uint8Array;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function decodePng(png: Uint8Array): Rgba {
  const buf = Buffer.from(png);
  if (buf.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new Error('not a PNG');
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    const type = buf.subarray(at + 4, at + 8).toString('latin1');
    const data = buf.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, color, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      if (depth !== 8 || color !== 6 || interlace !== 0) throw new Error(`PNG is not 8-bit RGBA without interlace (depth ${depth}, colour type ${color}, interlace ${interlace})`);
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= 4 ? out[y * stride + x - 4]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= 4 && y > 0 ? out[(y - 1) * stride + x - 4]! : 0;
      const v = line[x]!;
      const pred = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : filter === 4 ? paeth(a, b, c) : NaN;
      if (Number.isNaN(pred)) throw new Error(`PNG filter ${filter} on row ${y}`);
      out[y * stride + x] = (v + pred) & 0xff;
    }
  }
  return { width, height, pixels: out };
}

/** The bounding box of every pixel that is not fully transparent, or undefined for a blank image. */
export function inkBox(img: Rgba): { left: number; top: number; right: number; bottom: number } | undefined {
  let left = Infinity;
  let top = Infinity;
  let right = -1;
  let bottom = -1;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (img.pixels[(y * img.width + x) * 4 + 3] === 0) continue;
      left = Math.min(left, x);
      right = Math.max(right, x);
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
    }
  }
  return right < 0 ? undefined : { left, top, right, bottom };
}

/** Renders `svg` with rsvg-convert at 1 px per user unit. */
export async function renderSvg(svg: string): Promise<Rgba> {
  await requireTool('rsvg-convert');
  const dir = mkdtempSync(join(tmpdir(), 'ncfence-svg-'));
  try {
    writeFileSync(join(dir, 'in.svg'), svg);
    const r = await run('rsvg-convert', ['--format=png', '--output', join(dir, 'out.png'), join(dir, 'in.svg')], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`rsvg-convert failed: ${r.stderr}`);
    return decodePng(readFileSync(join(dir, 'out.png')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What a renderer draws outside the SVG's canvas, which a viewer cuts off:
 * the SVG is rendered again with `margin` more user units on every side (same
 * scale), and every pixel drawn in that margin is a clipped one. Returns the
 * canvas size and, when something spills, how far past each edge.
 */
export async function clippedInk(svg: string, margin = 400): Promise<{ width: number; height: number; spill?: { left: number; top: number; right: number; bottom: number } }> {
  const m = /<svg\b[^>]*>/.exec(svg);
  if (!m) throw new Error('no <svg> element');
  const attr = (name: string): string | undefined => new RegExp(`\\s${name}="([^"]*)"`).exec(m[0])?.[1];
  const width = Number(attr('width'));
  const height = Number(attr('height'));
  if (!(width > 0 && height > 0)) throw new Error(`the <svg> element has no numeric width and height: ${m[0]}`);
  const vb = (attr('viewBox') ?? `0 0 ${width} ${height}`).split(/[\s,]+/).map(Number);
  if (vb[2] !== width || vb[3] !== height) throw new Error(`viewBox ${vb.join(' ')} is not 1 unit per pixel for ${width}x${height}`);
  const open = m[0]
    .replace(/\s(width|height|viewBox)="[^"]*"/g, '')
    .replace(/^<svg/, `<svg width="${width + 2 * margin}" height="${height + 2 * margin}" viewBox="${vb[0]! - margin} ${vb[1]! - margin} ${width + 2 * margin} ${height + 2 * margin}"`);
  const img = await renderSvg(svg.replace(m[0], open));
  const box = inkBox(img);
  if (!box) return { width, height };
  const spill = {
    left: Math.max(0, margin - box.left),
    top: Math.max(0, margin - box.top),
    right: Math.max(0, box.right + 1 - (margin + width)),
    bottom: Math.max(0, box.bottom + 1 - (margin + height)),
  };
  return spill.left || spill.top || spill.right || spill.bottom ? { width, height, spill } : { width, height };
}
