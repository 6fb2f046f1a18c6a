import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCompleteJpeg, JpegFrameSplitter } from '../hardware/jpeg.js';
import { jpegComments, testJpeg } from './fakes/jpeg.js';

const frames = Array.from({ length: 6 }, (_, i) => testJpeg(`frame ${i}`));
const stream = Buffer.concat(frames);

/** Feeds `chunks` to a fresh splitter and returns the frames it emitted. */
function split(chunks: Buffer[], maxFrameBytes?: number): { out: Buffer[]; splitter: JpegFrameSplitter } {
  const out: Buffer[] = [];
  const splitter = new JpegFrameSplitter((frame) => out.push(frame), { maxFrameBytes });
  for (const chunk of chunks) splitter.push(chunk);
  return { out, splitter };
}

function labels(list: Buffer[]): string[] {
  return list.map((frame) => jpegComments(frame)[0] ?? '');
}

test('isCompleteJpeg wants SOI at the start and EOI at the end', () => {
  assert.equal(isCompleteJpeg(frames[0]!), true);
  assert.equal(isCompleteJpeg(frames[0]!.subarray(0, -1)), false);
  assert.equal(isCompleteJpeg(Buffer.concat([Buffer.from('x'), frames[0]!])), false);
  assert.equal(isCompleteJpeg(Buffer.from([0xff, 0xd8, 0xff])), false);
  assert.equal(isCompleteJpeg(Buffer.alloc(0)), false);
});

test('frames fed one byte at a time come out whole and in order', () => {
  const chunks = [...stream].map((byte) => Buffer.from([byte]));
  const { out } = split(chunks);
  assert.deepEqual(out, frames);
});

test('markers split across chunks (FF|D8 and FF|D9) are still found', () => {
  const one = frames[0]!;
  const two = frames[1]!;
  const bytes = Buffer.concat([one, two]);
  const eoiAt = one.length - 1; // chunk boundary between FF and D9 of the first frame
  const soiAt = one.length + 1; // between FF and D8 of the second
  const { out } = split([bytes.subarray(0, eoiAt), bytes.subarray(eoiAt, soiAt), bytes.subarray(soiAt)]);
  assert.deepEqual(out, [one, two]);
});

test('garbage between frames, stray FF bytes included, is dropped', () => {
  const garbage = Buffer.from([0x00, 0xff, 0x12, 0xff, 0xff, 0xd9, 0x41]);
  const { out, splitter } = split([garbage, frames[0]!, garbage, Buffer.from([0xff]), frames[1]!, garbage]);
  assert.deepEqual(out, [frames[0], frames[1]]);
  assert.equal(splitter.droppedBytes, garbage.length * 3 + 1);
});

test('many frames in one chunk all come out', () => {
  const many = Array.from({ length: 50 }, (_, i) => testJpeg(`n${i}`));
  const { out } = split([Buffer.concat(many)]);
  assert.deepEqual(labels(out), many.map((_, i) => `n${i}`));
});

test('chunks of random sizes give the same frames', () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 30; round++) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < stream.length;) {
      const size = 1 + Math.floor(random() * 300);
      chunks.push(stream.subarray(at, at + size));
      at += size;
    }
    assert.deepEqual(split(chunks).out, frames);
  }
});

test('a frame over the size cap is dropped and the next one still comes through', () => {
  const huge = testJpeg('huge', 5000);
  const { out, splitter } = split([huge.subarray(0, 2000), huge.subarray(2000), frames[2]!], 1000);
  assert.deepEqual(out, [frames[2]]);
  assert.equal(splitter.oversizedFrames, 1);
});

test('reset() forgets a half frame, so a restarted producer starts clean', () => {
  const half = frames[0]!.subarray(0, 300);
  const out: Buffer[] = [];
  const splitter = new JpegFrameSplitter((frame) => out.push(frame));
  splitter.push(half);
  splitter.reset();
  splitter.push(frames[1]!);
  assert.deepEqual(out, [frames[1]]);
});

test('an emitted frame does not share memory with the chunk it came from', () => {
  const chunk = Buffer.concat([frames[0]!, frames[1]!]);
  const { out } = split([chunk]);
  chunk.fill(0);
  assert.equal(isCompleteJpeg(out[0]!), true);
  assert.deepEqual(out[1], frames[1]);
});
