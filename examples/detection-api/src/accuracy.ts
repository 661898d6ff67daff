/**
 * How a detection's geolocation is graded. The rules, in order:
 *   GREEN   accuracy_meters <= 50  and confidence >= 0.8   (good enough to act on)
 *   YELLOW  accuracy_meters <= 200 and confidence >= 0.5   (usable, verify before acting)
 *   RED     anything else                                   (shown, not trusted)
 */
export const AccuracyFlag = { Green: 'GREEN', Yellow: 'YELLOW', Red: 'RED' } as const;
export type AccuracyFlag = (typeof AccuracyFlag)[keyof typeof AccuracyFlag];

export function gradeAccuracy(accuracyMeters: number, confidence: number): AccuracyFlag {
  if (accuracyMeters <= 50 && confidence >= 0.8) return AccuracyFlag.Green;
  if (accuracyMeters <= 200 && confidence >= 0.5) return AccuracyFlag.Yellow;
  return AccuracyFlag.Red;
}
