/**
 * Deciding a workflow's patches once, in the first workflow task of each run.
 *
 * Why: on replay the SDK answers patched(id) from the markers of the workflow task
 * being replayed. When a local activity's result reaches the workflow in the next
 * workflow task (the server may start one for it), a patched(id) right after it is
 * replayed against the earlier task, reads false where the live run read true, and
 * the run fails with a nondeterminism error it never leaves. Decided up front, each
 * later patched(id) of the run returns the value recorded at its start.
 *
 * Histories recorded before a workflow did this have no umbrella marker: they go on
 * deciding each patch where it is checked, as they did when they ran.
 */
import { patched } from '@temporalio/workflow';

export function decidePatchesAtRunStart(umbrella: string, ids: readonly string[]): void {
  if (patched(umbrella)) for (const id of ids) patched(id);
}
