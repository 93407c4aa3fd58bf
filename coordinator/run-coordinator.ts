export async function runCoordinator(o: unknown): Promise<number> { void o; return 1; }
