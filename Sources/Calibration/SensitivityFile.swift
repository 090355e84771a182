import Foundation
import GGMLCore
import Inference
import MappedIO
import StrictJSON

/// Measured sensitivities on disk (JSON), so that several budgets reuse one measurement.
public enum SensitivityFile {
    public static func write(_ infos: [Sensitivity.TensorInfo], to path: String) throws {
        let tensors: [JSONValue] = infos.map { i in
            .obj(["name": .string(i.name), "rows": .int(i.rows), "cols": .int(i.cols), "probe": .string(i.probe.name),
                  "probe_kld": .double(i.probeKLD),
                  "options": .array(i.options.map { .obj(["type": .string($0.type.name), "bytes": .int($0.bytes), "loss": .double($0.loss)]) })])
        }
        let doc = JSONValue.obj(["format": .string("edgequant-sensitivity-1"), "tensors": .array(tensors)])
        let out = try OutputFile(path: path) // temp file + rename; removed unless committed
        try out.write(Array(doc.serialized(pretty: true).utf8), at: 0)
        try out.commit()
    }

    public static func read(_ path: String, expecting weights: [String: Weight]) throws -> [Sensitivity.TensorInfo] {
        func fail(_ m: String) -> CalibrationError { .sensitivity(path: path, detail: m) }
        let file = try MappedFile(path: path)
        let doc: JSONValue
        do { doc = try JSONParser.parse(file.all) } catch { throw fail("not a sensitivity file: \(error)") }
        guard doc["format"]?.stringValue == "edgequant-sensitivity-1", let list = doc["tensors"]?.arrayValue else {
            throw fail("not an edgequant sensitivity file (format edgequant-sensitivity-1)")
        }
        var infos: [Sensitivity.TensorInfo] = []
        for t in list {
            guard let name = t["name"]?.stringValue, let rows = t["rows"]?.intValue, let cols = t["cols"]?.intValue,
                  let opts = t["options"]?.arrayValue else { throw fail("a tensor entry lacks name, rows, cols or options") }
            guard let w = weights[name], w.rows == rows, w.cols == cols else {
                throw fail("tensor \(name) [\(cols), \(rows)] is not in this model; measured for another model?")
            }
            var info = Sensitivity.TensorInfo(name: name, rows: rows, cols: cols)
            info.probeKLD = t["probe_kld"]?.doubleValue ?? 0
            info.options = try opts.map { o in
                guard let tn = o["type"]?.stringValue, let type = GGMLType(name: tn), let b = o["bytes"]?.intValue,
                      let l = o["loss"]?.doubleValue, l.isFinite, l >= 0, b > 0 else { throw fail("tensor \(name): a bad option") }
                return TypePlanner.Option(type: type, bytes: b, loss: l)
            }
            guard !info.options.isEmpty else { throw fail("tensor \(name): no options") }
            infos.append(info)
        }
        guard Set(infos.map(\.name)) == Set(weights.keys) else { throw fail("does not cover this model's weight matrices") }
        return infos
    }
}
