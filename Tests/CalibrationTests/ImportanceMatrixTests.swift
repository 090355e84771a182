import Calibration
import Testing

@Suite struct ImportanceMatrixTests {
    @Test func entryShape() {
        let e = ImportanceMatrix.Entry(sums: [Float](repeating: 1, count: 12), counts: [5, 7, 9])
        #expect(e.nMat == 3)
        #expect(e.ne0 == 4)
        #expect(ImportanceMatrix.Entry(sums: [], counts: []).ne0 == 0)
    }
}
