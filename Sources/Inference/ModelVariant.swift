import GGMLCore
import GGUFWriter
import MappedIO

