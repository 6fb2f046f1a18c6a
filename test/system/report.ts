// One PASS/FAIL line per step with its duration; after a failure the later steps are not run (their
// state is unknown) and say so. Ends on the plain "N passed, N failed" line CI reads.

export interface StepResult {
  name: string;
  outcome: 'PASS' | 'FAIL' | 'SKIP';
  seconds: number;
}

export class Report {
  readonly results: StepResult[] = [];
  readonly #started = performance.now();
  #interrupted: string | undefined;
  #summarized = false;

  get failed(): boolean {
    return this.results.some((r) => r.outcome === 'FAIL') || this.#interrupted !== undefined;
  }

  /** A signal or the deadline: the step under way fails whatever it returns (its guest is going away). */
  interrupt(why: string): void {
    this.#interrupted = why;
  }

  /** Runs a step unless an earlier one failed; what it returns is printed after its name. */
  async step(name: string, body: () => Promise<string | void>): Promise<boolean> {
    if (this.failed) {
      // After an interruption the later steps must not run against a guest being torn down.
      this.results.push({ name, outcome: 'SKIP', seconds: 0 });
      console.log(`SKIP ${name} (after a failure)`);
      return false;
    }
    const start = performance.now();
    try {
      const note = await body();
      if (this.#interrupted !== undefined) throw new Error(`interrupted: ${this.#interrupted}`);
      const seconds = (performance.now() - start) / 1000;
      this.results.push({ name, outcome: 'PASS', seconds });
      console.log(`PASS ${name} (${seconds.toFixed(1)} s)${note ? `: ${note}` : ''}`);
      return true;
    } catch (error) {
      const seconds = (performance.now() - start) / 1000;
      this.results.push({ name, outcome: 'FAIL', seconds });
      console.log(`FAIL ${name} (${seconds.toFixed(1)} s): ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  }

  /** Prints the timings and the closing count once: a signal's teardown and the run's own end may both ask. */
  printSummary(title: string): void {
    if (this.#summarized) return;
    this.#summarized = true;
    console.log(this.summary(title));
  }

  summary(title: string): string {
    const total = (performance.now() - this.#started) / 1000;
    const count = (o: StepResult['outcome']): number => this.results.filter((r) => r.outcome === o).length;
    const lines = [`${title}: ${total.toFixed(0)} s in all`];
    for (const r of this.results) lines.push(`  ${r.outcome} ${r.seconds.toFixed(1).padStart(7)} s  ${r.name}`);
    const skipped = count('SKIP');
    lines.push(`${count('PASS')} passed, ${count('FAIL')} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
    return lines.join('\n');
  }
}
