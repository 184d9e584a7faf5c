import { describe, expect, it } from 'vitest';
import {
  chooseBuildCompute,
  estimatedBytesPerChunk,
  measuredBytesPerChunk,
} from '../../functions/core/build-compute.js';

/** 512-d, the README's measured snapshot size per chunk (3,446 MiB at 1M chunks). */
const MEASURED_512 = (3_446 * 1024 * 1024) / 1_000_000;

describe('where Build and Validate run', () => {
  it('at the defaults (/tmp 4,096 MB, 500k chunks): 100k and 500k in Lambda, 600k (/tmp) and 1M on Fargate; with 10 GB of /tmp still 500k', () => {
    const at = (chunks: number, lambdaTmpMb = 4096) =>
      chooseBuildCompute({ chunks, bytesPerChunk: MEASURED_512, lambdaTmpMb, fargateAvailable: true });
    expect(at(100_000)).toMatchObject({ compute: 'lambda', reason: 'fits a Lambda with 2× margin' });
    expect(at(500_000).compute).toBe('lambda');
    expect(at(600_000)).toMatchObject({
      compute: 'fargate',
      reason:
        "600000 chunks is more than a Lambda build takes (500000); twice the estimated 2.0 GiB on /tmp does not fit the Build Lambda's 4096 MB",
    });
    expect(at(1_000_000)).toMatchObject({
      compute: 'fargate',
      reason:
        "1000000 chunks is more than a Lambda build takes (500000); twice the estimated 3.4 GiB on /tmp does not fit the Build Lambda's 4096 MB",
    });
    // The largest /tmp holds 1M twice over (6.7 of 10 GiB), but memory does not: the chunk bound.
    expect(at(500_000, 10_240).compute).toBe('lambda');
    expect(at(1_000_000, 10_240)).toMatchObject({
      compute: 'fargate',
      reason: '1000000 chunks is more than a Lambda build takes (500000)',
    });
  });

  it('the crossover on /tmp is where twice the estimate reaches it; incremental builds count the base graph too', () => {
    const tmpMb = 4096;
    const crossover = Math.floor((tmpMb * 1024 * 1024) / (2 * MEASURED_512));
    const choose = (chunks: number, incremental = false) =>
      chooseBuildCompute({
        chunks,
        bytesPerChunk: MEASURED_512,
        lambdaTmpMb: tmpMb,
        // The /tmp bound alone.
        lambdaMaxChunks: 10_000_000,
        fargateAvailable: true,
        incremental,
      }).compute;
    expect(crossover).toBe(594_312);
    expect(choose(crossover)).toBe('lambda');
    expect(choose(crossover + 1)).toBe('fargate');
    expect(choose(Math.floor(crossover * 0.75))).toBe('lambda');
    expect(choose(Math.floor(crossover * 0.75) + 2, true)).toBe('fargate');
  });

  it('an operator choice wins; a needed or requested Fargate build without the task fails before any work', () => {
    const big = { chunks: 2_000_000, bytesPerChunk: MEASURED_512, lambdaTmpMb: 10_240 };
    expect(chooseBuildCompute({ ...big, fargateAvailable: true, requested: 'lambda' })).toMatchObject({
      compute: 'lambda',
      reason:
        "requested (although 2000000 chunks is more than a Lambda build takes (500000); twice the estimated 6.7 GiB on /tmp does not fit the Build Lambda's 10240 MB)",
    });
    expect(
      chooseBuildCompute({
        chunks: 10,
        bytesPerChunk: 4000,
        lambdaTmpMb: 512,
        fargateAvailable: true,
        requested: 'fargate',
      }),
    ).toMatchObject({ compute: 'fargate', reason: 'requested' });
    expect(() => chooseBuildCompute({ ...big, fargateAvailable: false })).toThrow(
      expect.objectContaining({
        name: 'BuildComputeUnavailable',
        message: expect.stringContaining('fargateBuild=true'),
      }),
    );
  });

  it('bytes per chunk: measured on a version when there is one, else estimated from the dimensions', () => {
    expect(measuredBytesPerChunk({ a: { bytes: 3_000 }, b: { bytes: 1_000 } }, 2)).toBe(2_000);
    expect(measuredBytesPerChunk({ a: { bytes: 3_000 } }, 0)).toBeUndefined();
    // The estimate is on the safe side of the 512-d measurement.
    expect(estimatedBytesPerChunk(512)).toBeGreaterThan(MEASURED_512);
    expect(estimatedBytesPerChunk(512)).toBeLessThan(MEASURED_512 * 1.5);
  });
});
