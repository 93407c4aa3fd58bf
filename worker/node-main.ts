export async function runWorker(o: unknown): Promise<number> { void o; return 1; }
