/**
 * A set of numbers (53-bit hashes) in one growing Float64Array: added first, then sorted once
 * and searched. A Set<number> of 200,000 such hashes holds each as an object of its own, which
 * the garbage collector copies and scans again and again (verify's many small collections).
 */
export class NumberSet {
  #values = new Float64Array(1024);
  #size = 0;
  #sorted = true;

  get size(): number {
    return this.#size;
  }

  add(value: number): void {
    if (this.#size === this.#values.length) {
      const larger = new Float64Array(this.#values.length * 2);
      larger.set(this.#values);
      this.#values = larger;
    }
    this.#values[this.#size++] = value;
    this.#sorted = false;
  }

  /** The numbers added, in no particular order (a view: valid until the next add). */
  values(): Float64Array {
    return this.#values.subarray(0, this.#size);
  }

  has(value: number): boolean {
    if (!this.#sorted) {
      this.values().sort();
      this.#sorted = true;
    }
    let low = 0;
    let high = this.#size - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const found = this.#values[middle] as number;
      if (found === value) return true;
      if (found < value) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }
}
