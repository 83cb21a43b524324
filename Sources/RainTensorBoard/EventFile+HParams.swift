/// A hyperparameter's value as the HParams plugin holds it (`google.protobuf.Value`).
public enum HParam: Equatable {
    case number(Double)
    case text(String)
    case flag(Bool)
}

extension EventFile {
    /// The run's hyperparameters for TensorBoard's HParams tab, as PyTorch Lightning's TensorBoardLogger
    /// writes them: an `_hparams_/experiment` summary declaring every hyperparameter and the `metrics`
    /// tags, then an `_hparams_/session_start_info` summary with this run's values (plugin `hparams`,
    /// content a serialized `HParamsPluginData`, tensorboard/plugins/hparams/plugin_data.proto).
    public func hparams(_ values: [(name: String, value: HParam)], metrics: [String], wallTime: Double) throws {
        func pluginValue(_ tag: String, _ data: @escaping (inout ProtoWriter) -> Void) -> (inout ProtoWriter) -> Void {
            { v in
                v.string(1, tag)  // Value.tag
                v.message(9) { m in  // Value.metadata (SummaryMetadata)
                    m.message(1) { p in  // plugin_data
                        p.string(1, "hparams")  // plugin_name
                        var content = ProtoWriter()
                        content.int(1, 0)  // HParamsPluginData.version
                        data(&content)
                        p.bytes(2, content.bytes)  // content
                    }
                }
            }
        }
        let experiment = pluginValue("_hparams_/experiment") { c in
            c.message(2) { e in  // HParamsPluginData.experiment
                e.double(3, wallTime)  // time_created_secs
                for (name, value) in values {
                    e.message(4) { h in  // hparam_infos
                        h.string(1, name)
                        switch value {  // HParamInfo.type: DATA_TYPE_STRING 1, BOOL 2, FLOAT64 3
                        case .text: h.int(4, 1)
                        case .flag: h.int(4, 2)
                        case .number: h.int(4, 3)
                        }
                    }
                }
                for tag in metrics {
                    e.message(5) { m in  // metric_infos
                        m.message(1) { n in n.string(2, tag) }  // MetricName.tag
                    }
                }
            }
        }
        let start = pluginValue("_hparams_/session_start_info") { c in
            c.message(3) { s in  // HParamsPluginData.session_start_info
                for (name, value) in values {
                    s.message(1) { entry in  // map<string, google.protobuf.Value> hparams
                        entry.string(1, name)
                        entry.message(2) { v in
                            switch value {  // Value.number_value 2, string_value 3, bool_value 4
                            case .number(let d): v.double(2, d)
                            case .text(let t): v.string(3, t)
                            case .flag(let b): v.bool(4, b)
                            }
                        }
                    }
                }
                s.double(5, wallTime)  // start_time_secs
            }
        }
        try summary(step: 0, wallTime: wallTime, [experiment])
        try summary(step: 0, wallTime: wallTime, [start])
    }
}
